/**
 * A prometheus-operator PodMonitor for the vLLM pods (spec.monitoring.podMonitor). Fields follow
 * monitoring.coreos.com/v1 PodMonitorSpec (pkg/apis/monitoring/v1/podmonitor_types.go).
 */
import type { MistralSmallDeployment } from "../api/schema.ts";
import type { Plan } from "../planner/plan.ts";
import { commonLabels, namespacedMeta, selectorLabels, workloadName } from "./names.ts";

export const PODMONITOR_API_VERSION = "monitoring.coreos.com/v1";
/** Copied onto every series as app_kubernetes_io_instance: the dashboard groups by deployment. */
export const INSTANCE_LABEL = "app.kubernetes.io/instance";

export interface PodMonitor {
  apiVersion: typeof PODMONITOR_API_VERSION;
  kind: "PodMonitor";
  metadata: ReturnType<typeof namespacedMeta>;
  spec: {
    selector: { matchLabels: Record<string, string> };
    podTargetLabels: string[];
    podMetricsEndpoints: { port: string; path: string; interval: string }[];
  };
}

export function renderPodMonitor(msd: MistralSmallDeployment, _plan: Plan): PodMonitor | undefined {
  const pm = msd.spec.monitoring.podMonitor;
  if (!pm.enabled) return undefined;
  const meta = namespacedMeta(msd, workloadName(msd));
  return {
    apiVersion: PODMONITOR_API_VERSION,
    kind: "PodMonitor",
    // The user's labels first (a Prometheus podMonitorSelector), the operator's win.
    metadata: { ...meta, labels: { ...pm.labels, ...commonLabels(msd) } },
    spec: {
      // The PodMonitor's own namespace only (namespaceSelector omitted).
      selector: { matchLabels: selectorLabels(msd) },
      podTargetLabels: [INSTANCE_LABEL],
      // vLLM serves /metrics on the API port, which the pod names "http"; open even with an API key.
      podMetricsEndpoints: [{ port: "http", path: "/metrics", interval: pm.interval }],
    },
  };
}
