/**
 * `MistralSmallDeployment`: one Mistral Small 4 deployment as a Pulumi component. Its
 * `spec` is typed from the operator's zod schema (`SpecInput`: what a user writes), so a
 * misspelt field or a wrong enum value fails `tsc`; it is also validated when declared,
 * with the operator's own messages, so a bad spec fails `pulumi preview`, not the cluster.
 */
import * as pulumi from "@pulumi/pulumi";
import * as k8s from "@pulumi/kubernetes";
import { API_VERSION, KIND, type SpecInput, type Status } from "../../src/api/schema.ts";
import { parseResource } from "../../src/api/validate.ts";

/** vLLM's OpenAI-compatible port on the Service the operator creates (src/engine/command.ts). */
const VLLM_PORT = 8000;

export interface MistralSmallDeploymentArgs {
  /** Kubernetes name; defaults to the component's name. */
  readonly name?: string;
  /** Default "default". */
  readonly namespace?: string;
  /** The MistralSmallDeployment spec, exactly as in YAML. */
  readonly spec: SpecInput;
  readonly labels?: Record<string, string>;
  readonly annotations?: Record<string, string>;
  /**
   * Wait until the operator reports Ready=True (pulumi.com/waitFor), so that `status` and
   * `endpoint` describe a serving deployment. Default true.
   */
  readonly waitForReady?: boolean;
  /** How long to wait (pulumi.com/timeoutSeconds). Default 5400: download plus weight load. */
  readonly timeoutSeconds?: number;
}

export type Condition = NonNullable<Status["conditions"]>[number];

export class MistralSmallDeployment extends pulumi.ComponentResource {
  /** The MistralSmallDeployment object. */
  readonly resource: k8s.apiextensions.CustomResource;
  /** In-cluster URL of the OpenAI-compatible API (status.endpoint once reported). */
  readonly endpoint: pulumi.Output<string>;
  /** The status the operator wrote (conditions, plan, replicas). */
  readonly status: pulumi.Output<Status | undefined>;
  /** Ready=True, as last read. */
  readonly ready: pulumi.Output<boolean>;
  /** The Ready condition's reason (Available, Infeasible, ...). */
  readonly readyReason: pulumi.Output<string | undefined>;

  constructor(
    name: string,
    args: MistralSmallDeploymentArgs,
    opts?: pulumi.ComponentResourceOptions,
  ) {
    super("mistral-small:index:MistralSmallDeployment", name, {}, opts);
    const objectName = args.name ?? name;
    const namespace = args.namespace ?? "default";
    // Throws ValidationError listing every problem with its field path (name and spec).
    parseResource({
      apiVersion: API_VERSION,
      kind: KIND,
      metadata: { name: objectName, namespace },
      spec: args.spec,
    });
    const annotations: Record<string, string> = { ...args.annotations };
    if (args.waitForReady !== false) {
      annotations["pulumi.com/waitFor"] = "condition=Ready";
      annotations["pulumi.com/timeoutSeconds"] = String(args.timeoutSeconds ?? 5400);
    }
    this.resource = new k8s.apiextensions.CustomResource(
      name,
      {
        apiVersion: API_VERSION,
        kind: KIND,
        metadata: {
          name: objectName,
          namespace,
          ...(args.labels === undefined ? {} : { labels: args.labels }),
          ...(Object.keys(annotations).length === 0 ? {} : { annotations }),
        },
        spec: args.spec,
        // Declared so that the provider's read-back of the status becomes an output.
        status: undefined,
      },
      { parent: this },
    );
    const live = this.resource as unknown as { status: pulumi.Output<Status | undefined> };
    this.status = live.status;
    const computed = `http://${objectName}.${namespace}.svc:${VLLM_PORT}/v1`;
    this.endpoint = this.status.apply((s) => s?.endpoint ?? computed);
    const readyCondition = this.status.apply((s) =>
      s?.conditions?.find((c: Condition) => c.type === "Ready"),
    );
    this.ready = readyCondition.apply((c) => c?.status === "True");
    this.readyReason = readyCondition.apply((c) => c?.reason);
    this.registerOutputs({
      endpoint: this.endpoint,
      status: this.status,
      ready: this.ready,
      readyReason: this.readyReason,
    });
  }
}
