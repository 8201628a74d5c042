/** The Helm CLI of the chart tests: built from Go modules (scripts/build-helm.sh), run hermetically. */
import { join } from "node:path";
import { builtTool, runTool, type ToolResult } from "./cluster.ts";

export type Helm = (args: string[]) => Promise<ToolResult>;

/**
 * Builds Helm once (a no-op on a warm cache) and returns a runner for it against `kubeconfig`,
 * with its cache, config and data folders under `home` (nothing of the user's own Helm).
 */
export function helmCli(home: string, kubeconfig: string): Helm {
  const bin = builtTool("build-helm.sh");
  return (args) =>
    runTool(bin, args, {
      env: {
        ...process.env,
        KUBECONFIG: kubeconfig,
        HELM_CACHE_HOME: join(home, "cache"),
        HELM_CONFIG_HOME: join(home, "config"),
        HELM_DATA_HOME: join(home, "data"),
      },
    });
}
