/** The OpenAI-compatible Service in front of the vLLM pods. */
import type { V1Service } from "@kubernetes/client-node";
import type { MistralSmallDeployment } from "../api/schema.ts";
import { VLLM_PORT } from "../engine/command.ts";
import { selectorLabels, workloadObject } from "./names.ts";
import { RESOURCES } from "../kube/resources.ts";

export function renderService(msd: MistralSmallDeployment): V1Service {
  return workloadObject(msd, RESOURCES.service, {
    type: "ClusterIP",
    selector: selectorLabels(msd),
    ports: [
      { name: "http", port: VLLM_PORT, targetPort: "http", protocol: "TCP", appProtocol: "http" },
    ],
  });
}
