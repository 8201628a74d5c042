/**
 * The release workflow (.github/workflows/release.yml): a version tag publishes the
 * multi-arch operator image and the chart as an OCI artifact, with every version taken from
 * package.json — and the versions committed in the repository agree with it.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse } from "yaml";
import { CHART_DIR, REPO_ROOT } from "../../src/delivery/chart.ts";
import { IMAGE_REPOSITORY, OPERATOR_APP, appVersion } from "../../src/delivery/manifests.ts";

interface Step {
  name?: string;
  id?: string;
  uses?: string;
  run?: string;
  with?: Record<string, string>;
}
interface Job {
  needs?: string | string[];
  permissions?: Record<string, string>;
  outputs?: Record<string, string>;
  steps: Step[];
}
interface Workflow {
  on: { push: { tags: string[] } };
  env: Record<string, string>;
  jobs: Record<string, Job>;
}

const read = (rel: string) => readFileSync(join(REPO_ROOT, rel), "utf8");
const workflow = parse(read(".github/workflows/release.yml")) as Workflow;
const needs = (j: Job) => (j.needs === undefined ? [] : [j.needs].flat());
const step = (j: Job, pred: (s: Step) => boolean, what: string): Step => {
  const s = j.steps.find(pred);
  assert.ok(s, what);
  return s;
};

test("runs on a version tag only, after checking the tag is v<package.json version>", () => {
  assert.deepEqual(Object.keys(workflow.on), ["push"]);
  assert.deepEqual(workflow.on.push.tags, ["v*"]);
  const verify = workflow.jobs.verify!;
  const v = step(verify, (s) => s.id === "version", "a version step");
  assert.match(v.run!, /require\("\.\/package\.json"\)\.version/);
  assert.equal(verify.outputs?.version, "${{ steps.version.outputs.version }}");
  step(
    verify,
    (s) =>
      s.run?.includes('"${GITHUB_REF_NAME}" = "v${{ steps.version.outputs.version }}"') === true,
    "the tag is compared with package.json's version",
  );
  for (const check of ["gen-chart.ts --check", "gen-golden.ts --check", "npm run test:unit"]) {
    step(verify, (s) => s.run?.includes(check) === true, `verify runs ${check}`);
  }
});

test("pushes the multi-arch image tagged with the package version", () => {
  const image = workflow.jobs.image!;
  assert.deepEqual(needs(image), ["verify"]);
  assert.equal(image.permissions?.packages, "write");
  assert.equal(workflow.env.IMAGE, IMAGE_REPOSITORY);
  step(image, (s) => s.uses?.startsWith("docker/setup-qemu-action@") === true, "QEMU for arm64");
  step(image, (s) => s.uses?.startsWith("docker/setup-buildx-action@") === true, "buildx");
  const build = step(
    image,
    (s) => s.uses?.startsWith("docker/build-push-action@") === true,
    "build-push",
  );
  assert.deepEqual(build.with!.platforms!.split(",").sort(), ["linux/amd64", "linux/arm64"]);
  assert.equal(String(build.with!.push), "true");
  assert.equal(build.with!.tags, "${{ env.IMAGE }}:${{ needs.verify.outputs.version }}");
});

test("pushes the chart as an OCI artifact after the image, with the same version", () => {
  const chart = workflow.jobs.chart!;
  assert.deepEqual(needs(chart).sort(), ["image", "verify"]);
  assert.match(workflow.env.CHART_REPO!, /^oci:\/\//);
  const pkg = step(chart, (s) => s.run?.includes("helm package") === true, "helm package");
  assert.match(pkg.run!, /--version "\$\{\{ needs\.verify\.outputs\.version \}\}"/);
  assert.match(pkg.run!, /--app-version "\$\{\{ needs\.verify\.outputs\.version \}\}"/);
  const push = step(chart, (s) => s.run?.includes("helm push") === true, "helm push");
  assert.ok(
    push.run!.includes(
      `"${OPERATOR_APP}-\${{ needs.verify.outputs.version }}.tgz" "\${CHART_REPO}"`,
    ),
    push.run,
  );
  // The Helm the tests build (test/controlplane/helm/go.mod) is the one that releases.
  const goMod = read("test/controlplane/helm/go.mod");
  assert.ok(
    goMod.includes(`helm.sh/helm/v3 ${workflow.env.HELM_VERSION}`),
    workflow.env.HELM_VERSION,
  );
  const setup = step(chart, (s) => s.uses?.startsWith("azure/setup-helm@") === true, "setup-helm");
  assert.equal(setup.with!.version, "${{ env.HELM_VERSION }}");
});

test("every committed version agrees with package.json", () => {
  const version = appVersion();
  const chart = parse(read(join(CHART_DIR, "Chart.yaml"))) as {
    version: string;
    appVersion: string;
  };
  assert.equal(chart.version, version, "Chart.yaml version");
  assert.equal(chart.appVersion, version, "Chart.yaml appVersion");
  const values = parse(read(join(CHART_DIR, "values.yaml"))) as {
    image: { tag: string; repository: string };
  };
  assert.equal(values.image.tag, "", "the image tag defaults to appVersion");
  assert.equal(values.image.repository, IMAGE_REPOSITORY);
  const infra = JSON.parse(read("infra/package.json")) as { version: string };
  assert.equal(infra.version, version, "the Pulumi package");
  assert.match(
    read("Dockerfile"),
    new RegExp(`${IMAGE_REPOSITORY}:${version.replaceAll(".", "\\.")} `),
  );
});
