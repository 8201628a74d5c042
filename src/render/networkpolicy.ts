/**
 * Ingress isolation of the vLLM pods (spec.access.networkPolicy). vLLM serves the OpenAI API,
 * /health and /metrics on one port, so a rule can only open that port to a peer: clients get it
 * from the namespaces and pods the spec allows (this namespace by default), Prometheus from the
 * monitoring namespace, the operator when its builtin autoscaler scrapes the pods. Egress is left
 * alone: the pods download weights from the model hub (README lists what they reach).
 */
import type { V1NetworkPolicyPeer, V1NetworkPolicyPort } from "@kubernetes/client-node";
import type { MistralSmallDeployment } from "../api/schema.ts";
import type { Plan } from "../planner/plan.ts";
import { VLLM_PORT } from "../engine/command.ts";
import { OPERATOR_NAME, namespacedMeta, selectorLabels, workloadObject } from "./names.ts";
import { RESOURCES } from "../kube/resources.ts";

/** The label every namespace carries with its own name (Kubernetes sets it since 1.21). */
export const NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name";

/**
 * networking.k8s.io/v1 NetworkPolicy as sent on the wire. The client library's V1NetworkPolicy
 * calls the ingress rule's `from` `_from` (a reserved word in its generator), which only its own
 * serializer renames; the operator sends plain JSON, so the wire name is used here.
 */
export interface NetworkPolicy {
  apiVersion: "networking.k8s.io/v1";
  kind: "NetworkPolicy";
  metadata: ReturnType<typeof namespacedMeta>;
  spec: {
    podSelector: { matchLabels: Record<string, string> };
    policyTypes: "Ingress"[];
    ingress: { from: V1NetworkPolicyPeer[]; ports: V1NetworkPolicyPort[] }[];
  };
}

export interface NetworkPolicyContext {
  /** Where the operator runs; without it, operator pods of any namespace may scrape. */
  readonly operatorNamespace?: string;
}

type Peer = NonNullable<
  MistralSmallDeployment["spec"]["access"]["networkPolicy"]["apiFrom"]
>[number];

function peer(p: Peer): V1NetworkPolicyPeer {
  return {
    ...(p.namespaceSelector === undefined
      ? {}
      : { namespaceSelector: { matchLabels: { ...p.namespaceSelector.matchLabels } } }),
    ...(p.podSelector === undefined
      ? {}
      : { podSelector: { matchLabels: { ...p.podSelector.matchLabels } } }),
  };
}

/** Who may call the API: the spec's peers, or every pod of this namespace. */
function apiPeers(msd: MistralSmallDeployment): V1NetworkPolicyPeer[] {
  const from = msd.spec.access.networkPolicy.apiFrom;
  // A podSelector alone selects pods of the policy's own namespace; {} selects all of them.
  if (from === undefined) return [{ podSelector: {} }];
  return from.map(peer);
}

/** The operator's pods (labelled app.kubernetes.io/name by the chart), which scrape /metrics. */
function operatorPeer(ctx: NetworkPolicyContext): V1NetworkPolicyPeer {
  return {
    namespaceSelector:
      ctx.operatorNamespace === undefined
        ? {}
        : { matchLabels: { [NAMESPACE_NAME_LABEL]: ctx.operatorNamespace } },
    podSelector: { matchLabels: { "app.kubernetes.io/name": OPERATOR_NAME } },
  };
}

/** The builtin autoscaler reads each pod's /metrics directly; hpa/keda go through Prometheus. */
function operatorScrapes(msd: MistralSmallDeployment): boolean {
  return msd.spec.autoscaling.enabled && msd.spec.autoscaling.mode === "builtin";
}

export function renderNetworkPolicy(
  msd: MistralSmallDeployment,
  _plan: Plan,
  ctx: NetworkPolicyContext = {},
): NetworkPolicy | undefined {
  const np = msd.spec.access.networkPolicy;
  if (!np.enabled) return undefined;
  const port: V1NetworkPolicyPort[] = [{ protocol: "TCP", port: VLLM_PORT }];
  const metricsFrom: V1NetworkPolicyPeer[] = [
    { namespaceSelector: { matchLabels: { ...np.metricsNamespaceSelector.matchLabels } } },
    ...(operatorScrapes(msd) ? [operatorPeer(ctx)] : []),
  ];
  return workloadObject(msd, RESOURCES.networkPolicy, {
    podSelector: { matchLabels: selectorLabels(msd) },
    // Ingress only: an empty ingress list for the other ports means nothing else gets in.
    policyTypes: ["Ingress"],
    ingress: [
      { from: apiPeers(msd), ports: port },
      { from: metricsFrom, ports: port },
    ],
  });
}
