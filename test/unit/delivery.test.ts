/**
 * Delivery: the Helm chart's generated files cannot drift from their sources, its
 * values agree with the shared manifests and its schema, and the Dockerfile builds a
 * minimal non-root image.
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import {
  CHART_DIR,
  ChartGenerationError,
  REPO_ROOT,
  crdTemplate,
  generatedChartFiles,
} from "../../src/delivery/chart.ts";
import { chartValuesSchema, valuesJsonSchema } from "../../src/delivery/values.ts";
import {
  DEFAULT_LEASE_DURATION_SECONDS,
  DEFAULT_LOG_LEVEL,
  DEFAULT_RESOURCES,
  IMAGE_REPOSITORY,
  LEASE_NAME,
  METRICS_PORT,
  OPERATOR_APP,
  RUN_AS_USER,
  appVersion,
  defaultImage,
  operatorDeployment,
  operatorArgs,
  operatorManifests,
} from "../../src/delivery/manifests.ts";
import {
  DEFAULT_LOG_LEVEL as RUN_DEFAULT_LOG_LEVEL,
  LOG_LEVELS,
  logLevel,
} from "../../src/cli/run.ts";
import { OperatorMetrics } from "../../src/controller/metrics.ts";
import { CLUSTER_RULES, NAMESPACE_RULES } from "../../src/controller/rbac.ts";
import { OPERATOR_NAME } from "../../src/render/names.ts";
import { assertUpToDate } from "../support/generated.ts";

type Json = Record<string, unknown>;
const read = (rel: string) => readFileSync(join(REPO_ROOT, rel), "utf8");
const chart = (rel: string) => read(join(CHART_DIR, rel));

describe("helm chart", () => {
  test("the generated files are up to date (run `npm run gen` on failure)", () => {
    for (const [rel, generated] of generatedChartFiles()) {
      const path = join(REPO_ROOT, rel);
      assert.ok(existsSync(path), `${rel} is missing: run \`npm run gen\``);
      const committed = readFileSync(path, "utf8");
      assertUpToDate(
        committed,
        generated,
        `${rel} drifted from its source: run \`npm run gen\` and commit the result.`,
      );
    }
    assert.ok(
      !existsSync(join(REPO_ROOT, CHART_DIR, "crds")),
      "no crds/ folder: Helm would never upgrade it (the CRD is templates/crds.yaml)",
    );
  });

  test("the CRD template is crds/ behind crds.enabled, kept by crds.keep", () => {
    const t = chart("templates/crds.yaml");
    const crd = read(join("crds", readdirSync(join(REPO_ROOT, "crds"))[0]!));
    assert.match(t, /^\{\{- \/\*.*\*\/ -\}\}\n\{\{- if \.Values\.crds\.enabled \}\}\n/);
    assert.ok(
      t.includes(
        "{{- if .Values.crds.keep }}\n  annotations:\n    helm.sh/resource-policy: keep\n",
      ),
      "the keep annotation, only with crds.keep",
    );
    // Everything from spec: on is the CRD, byte for byte.
    assert.ok(t.includes(crd.slice(crd.indexOf("\nspec:\n"))), "the CRD's spec verbatim");
    assert.throws(
      () => crdTemplate("x.yaml", crd.replace("spec:", "spec: {{ x }}")),
      ChartGenerationError,
    );
  });

  test("values.yaml conforms to the zod schema values.schema.json is generated from", () => {
    const values = parse(chart("values.yaml")) as unknown;
    const r = chartValuesSchema.safeParse(values);
    assert.ok(r.success, r.error?.message);
    // And the schema refuses what Helm's would (a typo, a wrong type).
    assert.equal(chartValuesSchema.safeParse({ replicas: 3 }).success, false);
    assert.equal(
      chartValuesSchema.safeParse({ crds: { enabled: "yes", keep: true } }).success,
      false,
    );
    assert.equal(
      chartValuesSchema.safeParse({ resources: { limits: { memory: "lots" } } }).success,
      false,
    );
    assert.equal(chartValuesSchema.safeParse({ resources: { limits: { cpu: 2 } } }).success, true);
    assert.deepEqual(JSON.parse(chart("values.schema.json")), valuesJsonSchema());
  });

  test("the PodDisruptionBudget lets a drain evict one of the two operator pods at a time", () => {
    const v = parse(chart("values.yaml")) as { podDisruptionBudget: Json; replicaCount: number };
    assert.deepEqual(v.podDisruptionBudget, { enabled: true, maxUnavailable: 1 });
    assert.ok(v.replicaCount > 1, "a budget of one needs a standby");
  });

  test("the RBAC template holds every generated rule", () => {
    const text = chart("templates/rbac.yaml");
    for (const r of [...CLUSTER_RULES, ...NAMESPACE_RULES]) {
      const line = `resources: ${JSON.stringify(r.resources).replace(/,/g, ", ")}`;
      assert.ok(text.includes(line), `templates/rbac.yaml lacks ${line}: run \`npm run gen\``);
    }
  });

  test("Chart.yaml: appVersion is the package version, the default image is the Dockerfile's", () => {
    const meta = parse(chart("Chart.yaml")) as Json;
    const pkg = JSON.parse(read("package.json")) as { version: string };
    assert.equal(meta.name, OPERATOR_APP);
    assert.equal(meta.appVersion, pkg.version);
    assert.equal(appVersion(), pkg.version);
    const values = parse(chart("values.yaml")) as { image: { repository: string; tag: string } };
    assert.equal(values.image.repository, IMAGE_REPOSITORY);
    assert.equal(values.image.tag, "", "the tag defaults to appVersion");
    assert.equal(defaultImage(), `${IMAGE_REPOSITORY}:${pkg.version}`);
    assert.ok(read("Dockerfile").includes(IMAGE_REPOSITORY), "the Dockerfile names the image");
  });

  test("values.yaml defaults agree with the shared manifests", () => {
    const v = parse(chart("values.yaml")) as Json & {
      replicaCount: number;
      resources: unknown;
      securityContext: { runAsUser: number; runAsGroup: number };
      metrics: { port: number; service: { port: number } };
      leaderElection: { leaseDurationSeconds: number };
      serviceMonitor: { enabled: boolean };
    };
    const dep = operatorDeployment({ name: OPERATOR_APP, namespace: "x" }) as unknown as Json & {
      spec: { replicas: number };
    };
    assert.equal(v.replicaCount, dep.spec.replicas);
    assert.equal(v.replicaCount, 2, "two replicas with leader election");
    assert.deepEqual(v.resources, DEFAULT_RESOURCES);
    assert.equal(v.securityContext.runAsUser, RUN_AS_USER);
    assert.equal(v.securityContext.runAsGroup, RUN_AS_USER);
    assert.equal(v.metrics.port, METRICS_PORT);
    assert.equal(v.metrics.service.port, METRICS_PORT);
    assert.equal(v.leaderElection.leaseDurationSeconds, DEFAULT_LEASE_DURATION_SECONDS);
    assert.equal(v.serviceMonitor.enabled, false);
  });

  test("values.schema.json describes exactly the keys of values.yaml", () => {
    const schema = JSON.parse(chart("values.schema.json")) as Json;
    const values = parse(chart("values.yaml")) as Json;
    const defs = schema.definitions as Record<string, Json>;
    const resolve = (s: Json): Json => {
      if (typeof s.$ref === "string") return resolve(defs[s.$ref.replace("#/definitions/", "")]!);
      // A described reference is {description, allOf: [{$ref}]}.
      const all = s.allOf as Json[] | undefined;
      return all?.length === 1 ? resolve(all[0]!) : s;
    };
    const walk = (v: Json, s: Json, path: string) => {
      const node = resolve(s);
      const props = node.properties as Record<string, Json> | undefined;
      if (props === undefined) return; // free-form (maps, affinity)
      assert.equal(node.additionalProperties, false, `${path || "/"} refuses unknown keys`);
      for (const [k, child] of Object.entries(v)) {
        assert.ok(props[k] !== undefined, `${path}/${k} is in values.yaml but not in the schema`);
        if (typeof child === "object" && child !== null && !Array.isArray(child))
          walk(child as Json, props[k]!, `${path}/${k}`);
      }
      for (const k of Object.keys(props)) {
        // No default by design: minAvailable replaces the default maxUnavailable when set.
        if (k === "global" || `${path}/${k}` === "/podDisruptionBudget/minAvailable") continue;
        assert.ok(k in v, `${path}/${k} is in the schema but has no default in values.yaml`);
      }
    };
    walk(values, schema, "");
  });

  test("the chart's Lease is the one `msd run` elects its leader with", () => {
    assert.equal(LEASE_NAME, OPERATOR_NAME);
    assert.match(chart("templates/lease.yaml"), new RegExp(`name: ${LEASE_NAME}\\n`));
  });

  test("the deployment template runs `msd run` with leader election and restricted security", () => {
    const t = chart("templates/deployment.yaml");
    for (const s of [
      "--lease-namespace={{ .Release.Namespace }}",
      "fieldPath: metadata.name",
      "fieldPath: metadata.namespace",
      "path: /healthz",
      "path: /readyz",
      "runAsNonRoot: true",
      "readOnlyRootFilesystem: true",
      "allowPrivilegeEscalation: false",
      "- ALL",
      "type: RuntimeDefault",
    ]) {
      assert.ok(t.includes(s), `deployment.yaml has ${s}`);
    }
  });
});

describe("shared install manifests (Pulumi's)", () => {
  const all = operatorManifests({ name: "op", namespace: "ops" });
  const byKind = (k: string) => all.filter((m) => m.kind === k);

  test("RBAC is the generated rules, bound to the operator's ServiceAccount", () => {
    assert.deepEqual(byKind("ClusterRole")[0]?.rules, CLUSTER_RULES);
    assert.deepEqual(byKind("Role")[0]?.rules, NAMESPACE_RULES);
    assert.equal(byKind("Role")[0]?.metadata.namespace, "ops");
    for (const b of [...byKind("ClusterRoleBinding"), ...byKind("RoleBinding")]) {
      assert.deepEqual(b.subjects, [{ kind: "ServiceAccount", name: "op", namespace: "ops" }]);
    }
  });

  test("the Deployment: two replicas, lease in its namespace, downward API, probes, non-root", () => {
    const dep = byKind("Deployment")[0] as unknown as Json & {
      spec: {
        replicas: number;
        template: {
          spec: {
            securityContext: Json;
            containers: {
              args: string[];
              env: { name: string }[];
              livenessProbe: { httpGet: { path: string } };
              readinessProbe: { httpGet: { path: string } };
              securityContext: Json;
            }[];
          };
        };
      };
    };
    assert.equal(dep.spec.replicas, 2);
    const pod = dep.spec.template.spec;
    const c = pod.containers[0]!;
    assert.ok(c.args.includes("--lease-namespace=ops"));
    assert.ok(c.args.includes(`--port=${METRICS_PORT}`));
    assert.deepEqual(
      c.env.map((e) => e.name),
      ["POD_NAME", "POD_NAMESPACE"],
    );
    assert.equal(c.livenessProbe.httpGet.path, "/healthz");
    assert.equal(c.readinessProbe.httpGet.path, "/readyz");
    assert.equal(pod.securityContext.runAsNonRoot, true);
    assert.deepEqual(c.securityContext, {
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      runAsNonRoot: true,
      capabilities: { drop: ["ALL"] },
      seccompProfile: { type: "RuntimeDefault" },
    });
  });

  test("watchNamespace adds --namespace", () => {
    const dep = operatorDeployment({ name: "op", namespace: "ops", watchNamespace: "team-a" });
    const spec = dep.spec as { template: { spec: { containers: { args: string[] }[] } } };
    assert.ok(spec.template.spec.containers[0]!.args.includes("--namespace=team-a"));
  });
});

/** Dockerfile instructions, joined across line continuations, grouped by stage. */
function dockerStages(text: string): { name: string; from: string; lines: string[] }[] {
  const logical = text
    .replace(/\\\n/g, " ")
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#"));
  const stages: { name: string; from: string; lines: string[] }[] = [];
  for (const l of logical) {
    const from = /^FROM\s+(\S+)(?:\s+AS\s+(\S+))?/i.exec(l);
    if (from !== null) {
      stages.push({ from: from[1]!, name: from[2] ?? String(stages.length), lines: [] });
    } else stages.at(-1)?.lines.push(l);
  }
  return stages;
}

describe("Dockerfile", () => {
  const stages = dockerStages(read("Dockerfile"));
  const runtime = stages.at(-1)!;
  const build = stages.find((s) => s.name === "build");
  const deps = stages.find((s) => s.name === "deps");

  test("multi-stage: build compiles with tsc, deps installs production dependencies only", () => {
    assert.ok(stages.length >= 3, "build, deps and runtime stages");
    assert.ok(build, "a build stage");
    assert.ok(build.lines.some((l) => /^RUN npm ci\b/.test(l)));
    assert.ok(build.lines.some((l) => /^RUN npx tsc -p tsconfig\.build\.json$/.test(l)));
    assert.ok(deps, "a deps stage");
    assert.ok(deps.lines.some((l) => /^RUN npm ci .*--omit=dev/.test(l)));
  });

  test("runtime: minimal base, non-root numeric USER, ENTRYPOINT runs `msd run`", () => {
    assert.equal(runtime.name, "runtime");
    assert.match(runtime.from, /distroless\/nodejs\$\{NODE_MAJOR\}-debian12:nonroot$/);
    const user = runtime.lines.filter((l) => l.startsWith("USER "));
    assert.equal(user.length, 1);
    const [uid, gid] = user[0]!.slice(5).trim().split(":");
    assert.equal(Number(uid), RUN_AS_USER, "numeric, so kubelet can verify runAsNonRoot");
    assert.equal(Number(gid), RUN_AS_USER);
    const entry = runtime.lines.find((l) => l.startsWith("ENTRYPOINT "));
    assert.deepEqual(JSON.parse(entry!.slice("ENTRYPOINT ".length)), [
      "/nodejs/bin/node",
      "/app/bin/msd.js",
      "run",
    ]);
    assert.ok(!runtime.lines.some((l) => l.startsWith("RUN ")), "no RUN in the runtime stage");
  });

  test("runtime copies only the built output, production dependencies and the launcher", () => {
    const copies = runtime.lines
      .filter((l) => l.startsWith("COPY "))
      .map((l) => {
        const words = l.split(/\s+/).slice(1);
        const from = words.find((w) => w.startsWith("--from="))?.slice("--from=".length);
        const paths = words.filter((w) => !w.startsWith("--"));
        return `${from ?? "context"}:${paths.slice(0, -1).join(" ")}`;
      })
      .sort();
    assert.deepEqual(copies, [
      "build:/app/dist",
      "context:bin/msd.js",
      "context:package.json",
      "deps:/app/node_modules",
    ]);
    // bin/msd.js runs the compiled entry point when it exists.
    assert.match(read("bin/msd.js"), /\.\.\/dist\/src\/cli\/entry\.js/);
    const build = JSON.parse(read("tsconfig.build.json")) as {
      compilerOptions: Json;
      include: string[];
    };
    assert.equal(build.compilerOptions.outDir, "dist");
    assert.equal(build.compilerOptions.rootDir, ".");
    assert.equal(build.compilerOptions.rewriteRelativeImportExtensions, true);
    assert.equal(build.compilerOptions.noEmit, false);
  });

  test(".dockerignore lets in only what the build copies", () => {
    const rules = read(".dockerignore")
      .split("\n")
      .map((l) => l.trim())
      .filter((l) => l !== "" && !l.startsWith("#"));
    assert.equal(rules[0], "*", "ignore everything first");
    for (const p of ["package.json", "package-lock.json", "tsconfig.json", "tsconfig.build.json"]) {
      assert.ok(rules.includes(`!${p}`), p);
    }
    assert.ok(rules.includes("!src/") && rules.includes("!bin/msd.js"));
  });
});

describe("CI example", () => {
  test("the Pulumi workflow tests infra/, previews pull requests and updates main", () => {
    type Step = { run?: string; uses?: string; with?: Record<string, unknown> };
    const wf = parse(read(".github/workflows/pulumi.yml")) as {
      on: { pull_request?: unknown; push?: { branches?: string[] } };
      jobs: Record<string, { if?: string; needs?: string; steps: Step[] }>;
    };
    assert.ok(wf.on.pull_request !== undefined);
    assert.deepEqual(wf.on.push?.branches, ["main"]);
    const pulumiCommand = (job: string) =>
      wf.jobs[job]?.steps.find((s) => s.uses?.startsWith("pulumi/actions@") && s.with?.command)
        ?.with?.command;
    assert.equal(pulumiCommand("preview"), "preview");
    assert.match(wf.jobs.preview?.if ?? "", /pull_request/);
    assert.equal(pulumiCommand("up"), "up");
    assert.match(wf.jobs.up?.if ?? "", /push.*refs\/heads\/main/);
    const runs = (wf.jobs.test?.steps ?? []).map((s) => s.run ?? "");
    assert.ok(runs.includes("npm test --prefix infra"), "the mock tests run first");
    assert.equal(wf.jobs.preview?.needs, "test");
    assert.deepEqual(wf.jobs.up?.needs, ["test", "image"]);
  });

  test("the Pulumi workflow creates the stack on first use and deploys an image that exists", () => {
    type Step = {
      if?: string;
      name?: string;
      run?: string;
      uses?: string;
      with?: Record<string, unknown>;
      env?: Record<string, string>;
      "working-directory"?: string;
    };
    const wf = parse(read(".github/workflows/pulumi.yml")) as {
      env: Record<string, string>;
      jobs: Record<
        string,
        {
          if?: string;
          needs?: string | string[];
          permissions?: Record<string, string>;
          outputs?: Record<string, string>;
          steps: Step[];
        }
      >;
    };
    // The CLI CI installs is the one infra/e2e/up.test.ts builds and runs.
    const goMod = read("infra/e2e/cli/go.mod");
    const tested = /github\.com\/pulumi\/pulumi\/pkg\/v3 v(\S+)/.exec(goMod)?.[1];
    assert.equal(wf.env.PULUMI_VERSION, tested);
    assert.equal(wf.env.PULUMI_FALLBACK_TO_STATE_SECRETS_MANAGER, "true");

    // The image job: the given image, or this commit's, built and pushed.
    const image = wf.jobs.image!;
    assert.match(image.if ?? "", /push.*refs\/heads\/main/);
    assert.equal(image.permissions?.packages, "write");
    assert.equal(image.outputs?.image, "${{ steps.name.outputs.image }}");
    const build = image.steps.find((s) => s.uses?.startsWith("docker/build-push-action@"));
    assert.equal(build?.with?.push, true);
    assert.equal(build?.with?.context, ".");
    assert.equal(build?.with?.tags, "${{ steps.name.outputs.image }}");
    assert.equal(build?.if, "vars.OPERATOR_IMAGE == ''", "a given image is not rebuilt");
    const named = image.steps.find((s) => s.name === "Image to deploy");
    assert.match(named?.run ?? "", /GIVEN/);
    assert.match(
      named?.run ?? "",
      /ghcr\.io\/\$\{GITHUB_REPOSITORY,,\}\/operator:sha-\$\{GITHUB_SHA\}/,
    );

    // The up job: stack select --create, then the image into the stack config, then up.
    const steps = wf.jobs.up!.steps;
    const at = (p: (s: Step) => boolean) => steps.findIndex(p);
    const create = at((s) => /pulumi stack select --create "\$PULUMI_STACK"/.test(s.run ?? ""));
    const config = at((s) =>
      /pulumi config set .*operatorImage "\$OPERATOR_IMAGE"/.test(s.run ?? ""),
    );
    const up = at(
      (s) => s.uses?.startsWith("pulumi/actions@") === true && s.with?.command === "up",
    );
    const cli = at(
      (s) => s.uses?.startsWith("pulumi/actions@") === true && s.with?.command === undefined,
    );
    assert.ok(cli >= 0 && cli < create, "the CLI is installed before the stack is selected");
    assert.ok(create >= 0 && create < config && config < up, `order: ${create} ${config} ${up}`);
    for (const i of [create, config]) assert.equal(steps[i]!["working-directory"], "infra");
    assert.equal(steps[config]!.env?.OPERATOR_IMAGE, "${{ needs.image.outputs.image }}");
    assert.equal(steps[up]!.with?.["work-dir"], "infra");

    // The preview creates the stack too (before main's first up).
    const preview = wf.jobs.preview!.steps.find((s) => s.with?.command === "preview");
    assert.equal(preview?.with?.upsert, true);
  });
});

describe("operator log level", () => {
  test("msd run accepts pino's levels and refuses others with the list", () => {
    for (const l of LOG_LEVELS) assert.equal(logLevel(l), l);
    assert.equal(logLevel(undefined), "info");
    assert.throws(() => logLevel("verbose"), /--log-level must be one of trace, debug, info/);
  });

  test("the install's default is msd run's, and the chart passes its value", () => {
    assert.equal(DEFAULT_LOG_LEVEL, RUN_DEFAULT_LOG_LEVEL);
    const args = (o: Partial<Parameters<typeof operatorArgs>[0]>) =>
      operatorArgs({ name: "op", namespace: "ops", ...o });
    assert.ok(args({}).includes("--log-level=info"));
    assert.ok(args({ logLevel: "debug" }).includes("--log-level=debug"));
    const template = readFileSync(
      join(REPO_ROOT, CHART_DIR, "templates", "deployment.yaml"),
      "utf8",
    );
    assert.match(template, /- --log-level=\{\{ \.Values\.logLevel \}\}/);
    const values = parse(readFileSync(join(REPO_ROOT, CHART_DIR, "values.yaml"), "utf8")) as {
      logLevel: string;
    };
    assert.equal(values.logLevel, DEFAULT_LOG_LEVEL);
    const schema = JSON.parse(
      readFileSync(join(REPO_ROOT, CHART_DIR, "values.schema.json"), "utf8"),
    ) as { properties: { logLevel: { enum: string[] } } };
    assert.deepEqual(schema.properties.logLevel.enum, [...LOG_LEVELS]);
  });
});

describe("operator process metrics", () => {
  test("prom-client's default metrics carry one msd_ prefix", async () => {
    const text = await new OperatorMetrics().registry.metrics();
    assert.match(text, /^msd_process_cpu_seconds_total /m);
    assert.match(text, /^msd_nodejs_eventloop_lag_seconds /m);
    assert.doesNotMatch(text, /msd_process_process_|msd_process_nodejs_/);
  });
});
