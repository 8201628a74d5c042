/**
 * Kubeconfig resolution as kubectl does it: merge rules, relative paths, contexts and their
 * namespace, impersonation headers, token files, the in-cluster path. Files only: the
 * requests themselves are tested against a real apiserver in test/integration/auth.test.ts.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify } from "yaml";
import { KubeConfigError, loadConnection, mergeKubeConfigFiles } from "../../src/kube/config.ts";

const dir = mkdtempSync(join(tmpdir(), "msd-kc-"));
const CA_PEM = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

function file(name: string, doc: unknown): string {
  const path = join(dir, name);
  mkdirSync(join(path, ".."), { recursive: true });
  writeFileSync(path, typeof doc === "string" ? doc : stringify(doc));
  return path;
}

function config(opts: {
  cluster?: string;
  server?: string;
  user?: string;
  userSpec?: Record<string, unknown>;
  contexts?: { name: string; namespace?: string }[];
  current?: string;
  ca?: string;
}): unknown {
  const cluster = opts.cluster ?? "c1";
  const user = opts.user ?? "u1";
  return {
    apiVersion: "v1",
    kind: "Config",
    clusters: [
      {
        name: cluster,
        cluster: {
          server: opts.server ?? "https://10.0.0.1:6443",
          ...(opts.ca === undefined ? {} : { "certificate-authority": opts.ca }),
        },
      },
    ],
    users: [{ name: user, user: opts.userSpec ?? { token: "t1" } }],
    contexts: (opts.contexts ?? [{ name: "ctx1" }]).map((c) => ({
      name: c.name,
      context: { cluster, user, ...(c.namespace === undefined ? {} : { namespace: c.namespace }) },
    })),
    ...(opts.current === undefined ? {} : { "current-context": opts.current }),
  };
}

describe("mergeKubeConfigFiles", () => {
  test("missing files are skipped; the first file to name a cluster, user or context wins", () => {
    const a = file("merge/a", config({ server: "https://a:1", current: "ctx1" }));
    const b = file(
      "merge/b",
      config({
        server: "https://b:1",
        cluster: "c2",
        current: "other",
        contexts: [{ name: "ctx2" }],
      }),
    );
    const b2 = file("merge/b2", config({ server: "https://shadowed:1", current: "late" }));
    const m = mergeKubeConfigFiles([join(dir, "merge/missing"), a, b, b2]);
    assert.deepEqual(m.missing, [join(dir, "merge/missing")]);
    assert.deepEqual(m.files, [a, b, b2]);
    assert.equal(m.doc["current-context"], "ctx1");
    assert.deepEqual(
      m.doc.clusters.map((c) => [c.name, (c.cluster as { server: string }).server]),
      [
        ["c1", "https://a:1"],
        ["c2", "https://b:1"],
      ],
    );
    assert.deepEqual(
      m.doc.contexts.map((c) => c.name),
      ["ctx1", "ctx2"],
    );
  });

  test("only missing files: an error that lists them", () => {
    assert.throws(
      () => mergeKubeConfigFiles([join(dir, "nope1"), join(dir, "nope2")]),
      (e: unknown) => e instanceof KubeConfigError && /nope1, .*nope2/.test(e.message),
    );
  });

  test("relative paths resolve against the file that holds them; bare exec commands stay on PATH", () => {
    const path = file(
      "rel/sub/config",
      config({
        ca: "pki/ca.crt",
        userSpec: {
          "client-certificate": "client.crt",
          "client-key": "/abs/client.key",
          tokenFile: "token",
          exec: { command: "./bin/plugin", apiVersion: "client.authentication.k8s.io/v1" },
        },
      }),
    );
    const bare = file(
      "rel/bare",
      config({ user: "u2", userSpec: { exec: { command: "aws", args: ["eks", "get-token"] } } }),
    );
    const m = mergeKubeConfigFiles([path, bare]);
    const base = join(dir, "rel/sub");
    assert.equal(
      (m.doc.clusters[0]!.cluster as Record<string, string>)["certificate-authority"],
      join(base, "pki/ca.crt"),
    );
    const u = m.doc.users[0]!.user as Record<string, unknown>;
    assert.equal(u["client-certificate"], join(base, "client.crt"));
    assert.equal(u["client-key"], "/abs/client.key");
    assert.equal(u.tokenFile, join(base, "token"));
    assert.equal((u.exec as { command: string }).command, join(base, "bin/plugin"));
    const u2 = m.doc.users.find((x) => x.name === "u2")!.user as { exec: { command: string } };
    assert.equal(u2.exec.command, "aws");
  });
});

describe("loadConnection", () => {
  const env = (extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => ({ HOME: dir, ...extra });

  test("$KUBECONFIG with a missing first entry; a relative CA; the context's namespace", async () => {
    file("conn1/ca.crt", CA_PEM);
    const path = file(
      "conn1/config",
      config({ ca: "ca.crt", current: "ctx1", contexts: [{ name: "ctx1", namespace: "team-a" }] }),
    );
    const conn = await loadConnection({
      env: env({ KUBECONFIG: `${join(dir, "missing")}:${path}` }),
    });
    assert.equal(conn.server, "https://10.0.0.1:6443");
    assert.equal(conn.namespace, "team-a");
    assert.equal(conn.tls.ca?.toString(), CA_PEM);
    assert.equal((await conn.credentials()).headers.Authorization, "Bearer t1");
  });

  test("--context picks another context; an unknown one names the ones there are", async () => {
    const path = file(
      "conn2/config",
      config({ current: "ctx1", contexts: [{ name: "ctx1" }, { name: "ctx2", namespace: "two" }] }),
    );
    const conn = await loadConnection({ kubeconfig: path, context: "ctx2", env: env() });
    assert.equal(conn.namespace, "two");
    assert.match(conn.source, /context "ctx2"/);
    await assert.rejects(
      loadConnection({ kubeconfig: path, context: "nope", env: env() }),
      (e: unknown) => e instanceof KubeConfigError && /contexts: ctx1, ctx2/.test(e.message),
    );
  });

  test("a CA file that is not there: a KubeConfigError naming it, with the ENOENT as cause", async () => {
    const path = file("conn3/config", config({ ca: "missing-ca.crt", current: "ctx1" }));
    await assert.rejects(loadConnection({ kubeconfig: path, env: env() }), (e: unknown) => {
      assert.ok(e instanceof KubeConfigError);
      assert.match(e.message, /conn3\/missing-ca\.crt/);
      assert.equal((e.cause as { code?: string }).code, "ENOENT");
      return true;
    });
  });

  test("impersonation: as, as-groups, as-uid and as-user-extra become headers", async () => {
    const path = file(
      "conn4/config",
      config({
        current: "ctx1",
        userSpec: {
          token: "t",
          as: "jane",
          "as-groups": ["devs", "ops"],
          "as-uid": "1234",
          "as-user-extra": { "acme.com/project": ["p1", "p2"] },
        },
      }),
    );
    const { headers } = await (
      await loadConnection({ kubeconfig: path, env: env() })
    ).credentials();
    assert.equal(headers["Impersonate-User"], "jane");
    assert.deepEqual(headers["Impersonate-Group"], ["devs", "ops"]);
    assert.equal(headers["Impersonate-Uid"], "1234");
    assert.deepEqual(headers["Impersonate-Extra-acme.com%2Fproject"], ["p1", "p2"]);
    const bad = file(
      "conn4/bad",
      config({ current: "ctx1", userSpec: { token: "t", "as-groups": ["devs"] } }),
    );
    await assert.rejects(
      loadConnection({ kubeconfig: bad, env: env() }),
      (e: unknown) => e instanceof KubeConfigError && /need "as"/.test(e.message),
    );
  });

  test("tokenFile (relative) is read per request, not once at load", async () => {
    const token = file("conn5/token", "first\n");
    const path = file(
      "conn5/config",
      config({ current: "ctx1", userSpec: { tokenFile: "token" } }),
    );
    const conn = await loadConnection({ kubeconfig: path, env: env() });
    assert.equal((await conn.credentials()).headers.Authorization, "Bearer first");
    writeFileSync(token, "second\n");
    // Within a minute the cached value stands (client-go's period); the file is what counts.
    assert.equal((await conn.credentials()).headers.Authorization, "Bearer first");
  });

  test("in a pod (no kubeconfig flags or $KUBECONFIG): the service account, lean path", async () => {
    const sa = join(dir, "sa");
    file("sa/token", "sa-token\n");
    file("sa/ca.crt", CA_PEM);
    file("sa/namespace", "operators");
    const inPod = env({ KUBERNETES_SERVICE_HOST: "fd00::1", KUBERNETES_SERVICE_PORT: "443" });
    const conn = await loadConnection({ env: inPod, serviceAccountDir: sa });
    assert.equal(conn.server, "https://[fd00::1]:443");
    assert.equal(conn.namespace, "operators");
    assert.equal((await conn.credentials()).headers.Authorization, "Bearer sa-token");
    // A --context names a kubeconfig entry, so it never means the service account.
    await assert.rejects(
      loadConnection({ env: inPod, serviceAccountDir: sa, context: "x" }),
      (e: unknown) => e instanceof KubeConfigError && /no kubeconfig/.test(e.message),
    );
  });

  test("nothing to connect with: one error saying what was looked for", async () => {
    await assert.rejects(
      loadConnection({ env: env() }),
      (e: unknown) =>
        e instanceof KubeConfigError && /\.kube\/config does not exist/.test(e.message),
    );
  });
});
