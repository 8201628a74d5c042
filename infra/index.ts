/**
 * Example program: the operator, then one Mistral Small 4 deployment sized by it.
 * Configuration (Pulumi.<stack>.yaml): see Pulumi.dev.yaml.
 */
import * as pulumi from "@pulumi/pulumi";
import * as k8s from "@pulumi/kubernetes";
import { MistralSmallDeployment, MistralSmallOperator } from "./src/index.ts";

const config = new pulumi.Config();
// A kubeconfig file for the target cluster; the ambient one (KUBECONFIG) when unset.
const kubeconfigPath = config.get("kubeconfig");
const provider =
  kubeconfigPath === undefined
    ? undefined
    : new k8s.Provider("cluster", { kubeconfig: kubeconfigPath });

const operator = new MistralSmallOperator(
  "operator",
  {
    namespace: config.get("operatorNamespace") ?? "mistral-small-system",
    replicas: config.getNumber("operatorReplicas") ?? 2,
    ...(config.get("operatorImage") === undefined
      ? {}
      : { image: config.require("operatorImage") }),
    skipAwait: config.getBoolean("skipAwait") ?? false,
  },
  { provider },
);

const model = new MistralSmallDeployment(
  "mistral-small",
  {
    namespace: config.get("namespace") ?? "default",
    // Typed from the operator's schema: a wrong field or value fails `tsc`.
    spec: {
      gpu: { type: "a100-80gb" },
      maxModelLen: config.getNumber("maxModelLen") ?? 65536,
      replicas: config.getNumber("replicas") ?? 1,
      nodePool: { provider: "static" },
    },
    waitForReady: config.getBoolean("waitForReady") ?? true,
  },
  { provider, dependsOn: [operator] },
);

export const operatorNamespace = operator.namespace;
export const operatorMetrics = operator.metricsUrl;
export const endpoint = model.endpoint;
export const ready = model.ready;
export const readyReason = model.readyReason;
export const plan = model.status.apply((s) => s?.plan);
