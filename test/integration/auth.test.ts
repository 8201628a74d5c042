/**
 * Connecting the way kubectl does, against the real control plane: an exec plugin with
 * short-lived tokens (checked by a TokenReview webhook the apiserver calls), recovery once
 * the API server accepts us again, $KUBECONFIG with a missing first entry, a relative CA
 * path, --context, impersonation and a proxy-url through a CONNECT proxy.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { chmodSync, copyFileSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { createServer as createHttpServer, type Server } from "node:http";
import { connect, createServer as createNetServer, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify } from "yaml";
import { ADMIN_TOKEN, OPERATOR_USER, freePort } from "../../src/cluster/local.ts";
import { ApiError, KubeClient, RESOURCES, type KubeObject } from "../../src/kube/client.ts";
import { eventually, type TestCluster } from "./cluster.ts";
import {
  condition,
  httpStatus,
  msdYaml,
  startInProcess,
  startPreparedCluster,
  type Msd,
} from "./operator-harness.ts";

const REPO = join(import.meta.dirname, "..", "..");
/** How long the plugin's tokens live: several expiries fit in one test. */
const TOKEN_LIFETIME_MS = 4_000;
/** The webhook accepts a token this long past its expiry: requests in flight at expiry. */
const EXPIRY_GRACE_MS = 2_000;

/**
 * The apiserver's TokenReview webhook: `exec.<expiresAtMs>.<n>` tokens authenticate as
 * the operator's user until they expire; `refuse` turns every review down.
 */
class TokenWebhook {
  refuse = false;
  /** Reviews turned down because of `refuse`. */
  refused = 0;
  readonly tokens = new Set<string>();
  private server: Server | undefined;

  async start(): Promise<string> {
    this.server = createHttpServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const review = JSON.parse(Buffer.concat(chunks).toString("utf8")) as {
          spec: { token: string };
        };
        const ok = this.accepts(review.spec.token);
        res.writeHead(200, { "Content-Type": "application/json" }).end(
          JSON.stringify({
            apiVersion: "authentication.k8s.io/v1",
            kind: "TokenReview",
            status: ok
              ? { authenticated: true, user: { username: OPERATOR_USER, uid: "exec-uid" } }
              : { authenticated: false, error: "token expired or refused" },
          }),
        );
      });
    });
    await new Promise<void>((r) => this.server!.listen(0, "127.0.0.1", r));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/authenticate`;
  }

  private accepts(token: string): boolean {
    const [kind, expires] = token.split(".");
    if (kind !== "exec") return false;
    if (this.refuse) {
      this.refused += 1;
      return false;
    }
    this.tokens.add(token);
    return Date.now() < Number(expires) + EXPIRY_GRACE_MS;
  }

  stop(): void {
    this.server?.close();
  }
}

/** An exec credential plugin (a shell script running a Node script) that logs each call. */
function writeExecPlugin(dir: string): { callsFile: string } {
  const callsFile = join(dir, "plugin-calls");
  writeFileSync(callsFile, "");
  writeFileSync(
    join(dir, "plugin.mjs"),
    [
      `import { appendFileSync, readFileSync } from "node:fs";`,
      `const n = readFileSync(${JSON.stringify(callsFile)}, "utf8").split("\\n").length;`,
      `appendFileSync(${JSON.stringify(callsFile)}, new Date().toISOString() + "\\n");`,
      `const expires = Date.now() + ${TOKEN_LIFETIME_MS};`,
      `process.stdout.write(JSON.stringify({`,
      `  apiVersion: "client.authentication.k8s.io/v1", kind: "ExecCredential",`,
      `  status: { token: "exec." + expires + "." + n, expirationTimestamp: new Date(expires).toISOString() },`,
      `}));`,
    ].join("\n"),
  );
  const script = join(dir, "plugin.sh");
  writeFileSync(script, `#!/bin/sh\nexec "${process.execPath}" "${join(dir, "plugin.mjs")}"\n`);
  chmodSync(script, 0o755);
  return { callsFile };
}

function withoutPodNamespace(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.POD_NAMESPACE;
  delete env.KUBECONFIG;
  return env;
}

const calls = (file: string) => readFileSync(file, "utf8").split("\n").filter(Boolean).length;

interface KubeconfigParts {
  server: string;
  /** Relative to the kubeconfig's directory. */
  ca: string;
  contexts: { name: string; user: Record<string, unknown>; namespace?: string }[];
  current: string;
  proxyUrl?: string;
}

function kubeconfigDoc(p: KubeconfigParts): string {
  return stringify({
    apiVersion: "v1",
    kind: "Config",
    clusters: [
      {
        name: "local",
        cluster: {
          server: p.server,
          "certificate-authority": p.ca,
          ...(p.proxyUrl === undefined ? {} : { "proxy-url": p.proxyUrl }),
        },
      },
    ],
    users: p.contexts.map((c) => ({ name: `${c.name}-user`, user: c.user })),
    contexts: p.contexts.map((c) => ({
      name: c.name,
      context: {
        cluster: "local",
        user: `${c.name}-user`,
        ...(c.namespace === undefined ? {} : { namespace: c.namespace }),
      },
    })),
    "current-context": p.current,
  });
}

/** A CONNECT proxy on loopback that counts the tunnels it opens. */
async function connectProxy(): Promise<{ url: string; tunnels: string[]; close(): void }> {
  const tunnels: string[] = [];
  const server = createNetServer((client) => {
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf("\r\n\r\n");
      if (end < 0) return;
      client.off("data", onData);
      const [method, target] = head.subarray(0, end).toString("latin1").split(" ");
      if (method !== "CONNECT" || target === undefined) {
        client.end("HTTP/1.1 405 Method Not Allowed\r\n\r\n");
        return;
      }
      tunnels.push(target);
      const [host, port] = target.split(":");
      const upstream = connect(Number(port), host, () => {
        client.write("HTTP/1.1 200 Connection Established\r\n\r\n");
        upstream.write(head.subarray(end + 4));
        client.pipe(upstream).pipe(client);
      });
      upstream.on("error", () => client.destroy());
      client.on("error", () => upstream.destroy());
    };
    client.on("data", onData);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    tunnels,
    close: () => server.close(),
  };
}

describe("connecting like kubectl", () => {
  let c: TestCluster;
  let dir: string;
  let server: string;
  const webhook = new TokenWebhook();
  const admin = { token: ADMIN_TOKEN };

  before(async () => {
    const url = await webhook.start();
    c = await startPreparedCluster({ tokenWebhookUrl: url, karpenterCrds: false });
    server = c.local!.state.apiServerUrl;
    dir = mkdtempSync(join(tmpdir(), "msd-auth-"));
    // The apiserver's self-signed serving certificate (with its CA) verifies the server.
    copyFileSync(join(c.local!.state.dir, "pki", "apiserver.crt"), join(dir, "ca.crt"));
  });
  after(async () => {
    webhook.stop();
    await c?.stop();
  });

  /**
   * Writes `name` into the test folder: a kubeconfig for the local API server (its CA by a path
   * relative to the file) with `contexts`, the first one current; returns its path.
   */
  const writeKubeconfig = (
    name: string,
    contexts: KubeconfigParts["contexts"],
    proxyUrl?: string,
  ): string => {
    const file = join(dir, name);
    const current = contexts[0]!.name;
    const parts = { server, ca: "ca.crt", current, contexts };
    writeFileSync(file, kubeconfigDoc(proxyUrl === undefined ? parts : { ...parts, proxyUrl }));
    return file;
  };

  /** The exec plugin and a kubeconfig that runs it (by a path relative to the file). */
  const execKubeconfig = () => {
    const { callsFile } = writeExecPlugin(dir);
    const kubeconfig = writeKubeconfig("exec.kubeconfig", [
      {
        name: "exec",
        user: {
          exec: {
            apiVersion: "client.authentication.k8s.io/v1",
            command: "./plugin.sh", // relative to the kubeconfig, as kubectl resolves it
            interactiveMode: "Never",
          },
        },
      },
    ]);
    return { callsFile, kubeconfig };
  };

  test("exec plugin: short-lived tokens are fetched again at each expiry; reconciling goes on", async () => {
    const { callsFile, kubeconfig } = execKubeconfig();
    const op = await startInProcess(c, { kubeconfig, resyncMs: 2_000 });
    try {
      const started = Date.now();
      const changes = 4;
      for (let i = 1; i <= changes; i++) {
        const r = await c.kubectl(
          ["apply", "-f", "-"],
          msdYaml("exec", { gpu: { type: "a100-80gb" }, maxModelLen: 8192 * i }),
        );
        assert.equal(r.code, 0, r.stderr);
        await eventually(`generation ${i} reconciled`, async () => {
          const m = await c.client.getOrUndefined<Msd>(RESOURCES.msd, "exec", "default");
          return m?.status?.observedGeneration === i && condition(m, "Ready")?.status === "True";
        });
        // Let the token expire before the next change.
        await new Promise((r) => setTimeout(r, TOKEN_LIFETIME_MS + 500));
      }
      const elapsed = Date.now() - started;
      const n = calls(callsFile);
      const expiries = Math.floor(elapsed / TOKEN_LIFETIME_MS);
      assert.ok(n >= changes, `plugin called ${n} times over ${elapsed} ms`);
      // Cached until expiry: about one call per lifetime, not one per request.
      assert.ok(n <= 2 * (expiries + 1), `plugin called ${n} times for ${expiries} expiries`);
      assert.ok(webhook.tokens.size >= changes, `apiserver saw ${webhook.tokens.size} tokens`);
      assert.equal(op.operator.apiClient.refused().size, 0);
      assert.equal(await httpStatus(op.port, "/readyz"), 200);
      assert.doesNotMatch(readFileSync(op.logFile, "utf8"), /rejects our credentials/);
    } finally {
      await op.stop();
    }
  });

  test("refused credentials: a log line with the cause, /readyz fails, recovery without restart", async () => {
    const { kubeconfig } = execKubeconfig();
    const op = await startInProcess(c, { kubeconfig, resyncMs: 2_000 });
    try {
      await eventually("ready", async () => (await httpStatus(op.port, "/readyz")) === 200);
      webhook.refuse = true;
      // The apiserver caches token reviews: wait for the plugin's next token, never reviewed.
      await new Promise((r) => setTimeout(r, TOKEN_LIFETIME_MS + 500));
      // A change makes the operator write; the write is refused.
      const r = await c.kubectl(
        ["apply", "-f", "-"],
        msdYaml("refused", { gpu: { type: "a100-80gb" }, maxModelLen: 8192 }),
      );
      assert.equal(r.code, 0, r.stderr);
      await eventually(
        `/readyz fails (${webhook.refused} reviews refused so far)`,
        async () => (await httpStatus(op.port, "/readyz")) === 503,
      );
      const log = readFileSync(op.logFile, "utf8");
      const line = log.split("\n").find((l) => l.includes("rejects our credentials"));
      assert.ok(line !== undefined, "an error log line names the refusal");
      const entry = JSON.parse(line) as { status: number; connection: string; level: number };
      assert.equal(entry.status, 401);
      assert.equal(entry.level, 50);
      assert.match(entry.connection, /exec\.kubeconfig, context "exec"/);

      webhook.refuse = false;
      await eventually(
        "reconciled once accepted again",
        async () => {
          const m = await c.client.getOrUndefined<Msd>(RESOURCES.msd, "refused", "default");
          return m?.status?.observedGeneration === 1;
        },
        90_000,
      );
      await eventually("/readyz back", async () => (await httpStatus(op.port, "/readyz")) === 200);
      // The log stream is written asynchronously.
      await eventually("the recovery log line", async () =>
        /API server accepts our requests again/.test(readFileSync(op.logFile, "utf8")),
      );
    } finally {
      webhook.refuse = false;
      await op.stop();
    }
  });

  test("an expired plugin token is refused: refreshing is what keeps the operator in", async () => {
    const expired = `exec.${Date.now() - EXPIRY_GRACE_MS - 1000}.0`;
    const kubeconfig = writeKubeconfig("expired.kubeconfig", [
      { name: "x", user: { token: expired } },
    ]);
    const client = await KubeClient.load({ kubeconfig });
    try {
      await assert.rejects(
        client.list(RESOURCES.msd, { namespace: "default" }),
        (err: unknown) => err instanceof ApiError && err.status === 401,
      );
      assert.equal(client.refused().size, 1);
    } finally {
      client.close();
    }
  });

  test("$KUBECONFIG with a missing first entry; relative CA path; the current context", async () => {
    const file = writeKubeconfig("admin.kubeconfig", [{ name: "admin", user: admin }]);
    const client = await KubeClient.load({
      env: { KUBECONFIG: `${join(dir, "does-not-exist")}:${file}`, HOME: dir },
    });
    try {
      const ns = await client.get<KubeObject>(RESOURCES.namespace, "default");
      assert.equal(ns.metadata.name, "default");
      assert.match(client.source, /admin\.kubeconfig, context "admin"/);
    } finally {
      client.close();
    }
  });

  test("msd run --context picks the second context; its namespace holds the Lease", async () => {
    const ns = await c.kubectl(["create", "namespace", "ctx-ns"]);
    assert.equal(ns.code, 0, ns.stderr);
    const file = writeKubeconfig("two.kubeconfig", [
      { name: "broken", user: { token: "not-a-valid-token" } },
      { name: "second", user: admin, namespace: "ctx-ns" },
    ]);
    const port = await freePort();
    const child = spawn(
      process.execPath,
      [
        join(REPO, "bin", "msd.js"),
        "run",
        `--kubeconfig=${file}`,
        "--context=second",
        `--port=${port}`,
      ],
      { stdio: ["ignore", "pipe", "pipe"], env: withoutPodNamespace() },
    );
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (out += d.toString()));
    try {
      const lease = await eventually("lease in the context's namespace", () =>
        c.client.getOrUndefined<KubeObject>(RESOURCES.lease, "mistral-small-operator", "ctx-ns"),
      );
      assert.equal(lease.metadata.namespace, "ctx-ns");
      await eventually("ready", async () => (await httpStatus(port, "/readyz")) === 200);
      assert.match(out, /context \\"second\\"/);
    } finally {
      child.kill("SIGTERM");
      await new Promise((r) => child.once("exit", r));
    }
    // The current context alone would be refused.
    const current = await KubeClient.load({ kubeconfig: file });
    try {
      await assert.rejects(current.get(RESOURCES.namespace, "default"), (e: unknown) => {
        return e instanceof ApiError && e.status === 401;
      });
    } finally {
      current.close();
    }
  });

  test("impersonation: requests run as the impersonated user and groups, with their rights", async () => {
    const file = writeKubeconfig("impersonate.kubeconfig", [
      {
        name: "limited",
        user: { ...admin, as: "msd-limited", "as-groups": ["msd-limited-group", "other"] },
      },
    ]);
    const client = await KubeClient.load({ kubeconfig: file });
    try {
      const review = await client.request<{
        status: { userInfo: { username: string; groups: string[] } };
      }>("create", "POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", {
        apiVersion: "authentication.k8s.io/v1",
        kind: "SelfSubjectReview",
      });
      assert.equal(review.status.userInfo.username, "msd-limited");
      assert.ok(review.status.userInfo.groups.includes("msd-limited-group"));
      assert.ok(review.status.userInfo.groups.includes("other"));
      // Not system:masters any more: the admin token's rights are gone.
      await assert.rejects(
        client.list(RESOURCES.msd, { namespace: "default" }),
        (e: unknown) => e instanceof ApiError && e.status === 403,
      );
      assert.equal(client.refused().size, 1);
      // Bind the operator's rules to the impersonated group: now it may do what they allow.
      const binding = {
        apiVersion: "rbac.authorization.k8s.io/v1",
        kind: "ClusterRoleBinding",
        metadata: { name: "msd-limited-group" },
        roleRef: {
          apiGroup: "rbac.authorization.k8s.io",
          kind: "ClusterRole",
          // The ClusterRole startPreparedCluster applied.
          name: "mistral-small-operator",
        },
        subjects: [
          { kind: "Group", apiGroup: "rbac.authorization.k8s.io", name: "msd-limited-group" },
        ],
      };
      const r = await c.kubectl(["apply", "-f", "-"], stringify(binding));
      assert.equal(r.code, 0, r.stderr);
      await eventually("allowed after binding", async () => {
        await client.list(RESOURCES.msd, { namespace: "default" });
        return true;
      });
      assert.equal(client.refused().size, 0);
      // ...and still nothing more: the operator's rules do not include reading Secrets.
      await assert.rejects(
        client.request("list", "GET", "/api/v1/namespaces/default/secrets"),
        (e: unknown) => e instanceof ApiError && e.status === 403,
      );
    } finally {
      client.close();
    }
  });

  test("proxy-url: every request goes through the CONNECT proxy, over one kept-alive tunnel", async () => {
    const proxy = await connectProxy();
    const file = writeKubeconfig("proxy.kubeconfig", [{ name: "p", user: admin }], proxy.url);
    const client = await KubeClient.load({ kubeconfig: file });
    try {
      for (let i = 0; i < 5; i++) await client.get(RESOURCES.namespace, "default");
      const target = new URL(server);
      assert.deepEqual(proxy.tunnels, [`${target.hostname}:${target.port}`]);
    } finally {
      client.close();
      proxy.close();
    }
  });
});
