/**
 * Watch streams decode correctly however the bytes are chunked: the line decoder alone,
 * split at every byte offset, and the client's watch over a real HTTP connection.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { LineDecoder } from "../../src/kube/lines.ts";
import { KubeClient, RESOURCES, type KubeObject, type WatchEvent } from "../../src/kube/client.ts";
import { USER_AGENT, VERSION } from "../../src/util/version.ts";

/** Events whose names hold 2-, 3- and 4-byte UTF-8 characters, one of them a bookmark. */
const EVENTS: WatchEvent<KubeObject>[] = [
  { type: "ADDED", object: { metadata: { name: "café", resourceVersion: "1" } } },
  {
    type: "MODIFIED",
    object: { metadata: { name: "a€b", resourceVersion: "2", labels: { note: "日本語" } } },
  },
  { type: "BOOKMARK", object: { metadata: { name: "", resourceVersion: "3" } } },
  { type: "DELETED", object: { metadata: { name: "emoji-😀", resourceVersion: "4" } } },
];
const STREAM = Buffer.from(EVENTS.map((e) => `${JSON.stringify(e)}\n`).join(""), "utf8");

function decodeChunks(chunks: Buffer[]): WatchEvent<KubeObject>[] {
  const d = new LineDecoder();
  const lines = [...chunks.flatMap((c) => d.push(c)), ...d.end()];
  return lines.filter((l) => l !== "").map((l) => JSON.parse(l) as WatchEvent<KubeObject>);
}

describe("LineDecoder", () => {
  test("the stream holds multi-byte characters (the test would be vacuous otherwise)", () => {
    assert.ok(STREAM.length > STREAM.toString("utf8").length + 8);
  });

  test("split in two at every byte offset, every event arrives intact", () => {
    for (let i = 0; i <= STREAM.length; i++) {
      const events = decodeChunks([STREAM.subarray(0, i), STREAM.subarray(i)]);
      assert.deepEqual(events, EVENTS, `split at byte ${i}`);
    }
  });

  test("one byte per chunk, and three chunks at every pair of offsets in the first event", () => {
    const bytes = [...STREAM].map((b) => Buffer.from([b]));
    assert.deepEqual(decodeChunks(bytes), EVENTS);
    const first = STREAM.indexOf("\n") + 1;
    for (let i = 0; i <= first; i++)
      for (let j = i; j <= first + 4; j++) {
        const parts = [STREAM.subarray(0, i), STREAM.subarray(i, j), STREAM.subarray(j)];
        assert.deepEqual(decodeChunks(parts), EVENTS, `split at ${i} and ${j}`);
      }
  });

  test("CRLF line ends and a last line without a newline", () => {
    const d = new LineDecoder();
    assert.deepEqual(d.push(Buffer.from("a\r\nb")), ["a"]);
    assert.deepEqual(d.end(), ["b"]);
  });

  test("a naive per-chunk decode corrupts the same split (what this replaces)", () => {
    const at = STREAM.indexOf(Buffer.from("é")) + 1; // inside the 2-byte é
    const naive = STREAM.subarray(0, at).toString("utf8") + STREAM.subarray(at).toString("utf8");
    assert.notEqual(naive, STREAM.toString("utf8"));
  });
});

/** Serves the watch stream cut into two TCP writes at `splitAt`, recording request headers. */
async function watchServer(
  splitAt: number,
): Promise<{ server: Server; url: string; ua: string[] }> {
  const ua: string[] = [];
  const server = createServer((req, res) => {
    ua.push(req.headers["user-agent"] ?? "");
    res.writeHead(200, { "Content-Type": "application/json" });
    res.write(STREAM.subarray(0, splitAt));
    setTimeout(() => res.end(STREAM.subarray(splitAt)), 5);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  return { server, url: `http://127.0.0.1:${port}`, ua };
}

describe("KubeClient.watch over HTTP", () => {
  test("events split inside a multi-byte character arrive intact, with our User-Agent", async () => {
    const splits = [1, STREAM.indexOf(Buffer.from("é")) + 1, STREAM.indexOf(Buffer.from("😀")) + 2];
    for (const splitAt of splits) {
      const { server, url, ua } = await watchServer(splitAt);
      const client = KubeClient.fromConnection({
        server: url,
        namespace: undefined,
        source: "test",
        tls: {},
        credentials: async () => ({ headers: {} }),
      });
      try {
        const got: WatchEvent<KubeObject>[] = [];
        const w = client.watch(RESOURCES.pod, { resourceVersion: "0" }, (e) => got.push(e));
        await w.done;
        assert.deepEqual(got, EVENTS, `split at byte ${splitAt}`);
        assert.deepEqual(ua, [USER_AGENT]);
        assert.equal(USER_AGENT, `mistral-small-operator/${VERSION}`);
        assert.match(VERSION, /^\d+\.\d+\.\d+/);
      } finally {
        client.close();
        server.close();
      }
    }
  });
});
