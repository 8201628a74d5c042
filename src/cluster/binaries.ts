/**
 * Finds (or builds) the control-plane binaries: KUBEBUILDER_ASSETS first (the
 * envtest convention), else the version-keyed cache that scripts/build-controlplane.sh fills.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { packageRoot } from "../util/package-root.ts";
import { runBuildScript } from "./build-script.ts";

export const COMPONENTS = [
  "etcd",
  "kube-apiserver",
  "kube-controller-manager",
  "kube-scheduler",
  "kubectl",
  "kwok",
] as const;
export type Component = (typeof COMPONENTS)[number];

export interface Binaries {
  readonly dir: string;
  readonly path: (c: Component) => string;
  readonly karpenterCrdsDir: string;
  /** monitoring.coreos.com CRDs (PodMonitor, ServiceMonitor) from the prometheus-operator module. */
  readonly prometheusCrdsDir: string;
  readonly kwokStages: string | undefined;
}

// Not "../../": compiled to dist/src/cluster/ that would be dist/, which has no scripts/.
const REPO_ROOT = packageRoot(import.meta.url);
export const BUILD_SCRIPT = join(REPO_ROOT, "scripts", "build-controlplane.sh");

export class BinariesMissingError extends Error {
  override name = "BinariesMissingError";
}

/** Runs the build script (a no-op on a warm cache) and returns where everything is. */
export function ensureBinaries(options: { quiet?: boolean } = {}): Binaries {
  const dir = runBuildScript(
    BUILD_SCRIPT,
    options.quiet,
    (cause) =>
      new BinariesMissingError(`building the control plane failed (${BUILD_SCRIPT})`, { cause }),
  );
  const assets = process.env.KUBEBUILDER_ASSETS;
  const path = (c: Component) => {
    const fromAssets = assets === undefined ? undefined : join(assets, c);
    if (fromAssets !== undefined && existsSync(fromAssets)) return fromAssets;
    const cached = join(dir, c);
    if (!existsSync(cached)) throw new BinariesMissingError(`${c} not found in ${dir}`);
    return cached;
  };
  for (const c of COMPONENTS) path(c);
  const stages = join(dir, "kwok-stages.yaml");
  return {
    dir,
    path,
    karpenterCrdsDir: join(dir, "karpenter-crds"),
    prometheusCrdsDir: join(dir, "prometheus-crds"),
    kwokStages: existsSync(stages) ? stages : undefined,
  };
}
