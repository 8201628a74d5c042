/**
 * `MistralSmallDeployment`: one Mistral Small 4 deployment as a Pulumi component. Its
 * `spec` is typed from the operator's zod schema (`SpecInput`: what a user writes), so a
 * misspelt field or a wrong enum value fails `tsc`; every value may be a `pulumi.Input`
 * (a namespace or a Secret name from another resource's Output). It is validated with the
 * operator's own messages, naming the field: when declared if every value is known, else
 * as soon as the Outputs resolve, so a bad spec fails `pulumi preview`/`up`, not the cluster.
 */
import * as pulumi from "@pulumi/pulumi";
import * as k8s from "@pulumi/kubernetes";
import { API_VERSION, KIND, type SpecInput, type Status } from "./generated/api/schema.ts";
import { parseResource } from "./generated/api/validate.ts";

/**
 * T with every value (at any depth) allowed to be a pulumi.Input: what pulumi.output()
 * unwraps back to T.
 */
export type DeepInput<T> = T extends string | number | boolean | undefined | null
  ? pulumi.Input<T>
  : T extends readonly (infer U)[]
    ? pulumi.Input<readonly DeepInput<U>[]>
    : pulumi.Input<{ [K in keyof T]: DeepInput<T[K]> }>;

/** The spec as a Pulumi input: the same type, any value an Input. */
export type SpecArgs = DeepInput<SpecInput>;

/** True when `v` holds no Output or Promise at any depth: then it can be checked at once. */
function isKnown(v: unknown): boolean {
  if (pulumi.Output.isInstance(v) || v instanceof Promise) return false;
  if (Array.isArray(v)) return v.every(isKnown);
  if (typeof v === "object" && v !== null) return Object.values(v).every(isKnown);
  return true;
}

/** Throws ValidationError listing every problem with its field path (name and spec). */
function validate(name: string, namespace: string, spec: unknown): void {
  parseResource({ apiVersion: API_VERSION, kind: KIND, metadata: { name, namespace }, spec });
}

/** vLLM's OpenAI-compatible port on the Service the operator creates (src/engine/command.ts). */
const VLLM_PORT = 8000;

export interface MistralSmallDeploymentArgs {
  /** Kubernetes name; defaults to the component's name. */
  readonly name?: pulumi.Input<string>;
  /** Default "default". */
  readonly namespace?: pulumi.Input<string>;
  /** The MistralSmallDeployment spec, exactly as in YAML; any value may be an Input. */
  readonly spec: SpecArgs;
  readonly labels?: pulumi.Input<Record<string, pulumi.Input<string>>>;
  readonly annotations?: pulumi.Input<Record<string, pulumi.Input<string>>>;
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
  /** The spec once every Input resolved, validated with the operator's schema. */
  readonly spec: pulumi.Output<SpecInput>;
  /**
   * Settles once the spec is validated; rejects with the ValidationError naming each field
   * (what `pulumi up` reports for a spec whose values came from Outputs).
   */
  readonly validation: Promise<void>;
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
    // Known values fail here, synchronously, naming the field; Outputs once they resolve.
    if (isKnown([objectName, namespace, args.spec])) {
      validate(objectName as string, namespace as string, args.spec);
    }
    let settle: { resolve: () => void; reject: (err: unknown) => void } | undefined;
    this.validation = new Promise<void>((resolve, reject) => (settle = { resolve, reject }));
    // Marks the promise handled for programs that never await it: the same error still
    // fails the resource below (its spec is this Output), so Pulumi reports it either way.
    this.validation.catch(() => undefined);
    const checkedSpec = pulumi
      .all([pulumi.output(objectName), pulumi.output(namespace), pulumi.output(args.spec)])
      .apply(([n, ns, spec]) => {
        try {
          validate(n, ns, spec);
        } catch (err) {
          settle!.reject(err);
          throw err;
        }
        settle!.resolve();
        return spec as SpecInput;
      });
    this.spec = checkedSpec;
    const wait: Record<string, string> =
      args.waitForReady === false
        ? {}
        : {
            "pulumi.com/waitFor": "condition=Ready",
            "pulumi.com/timeoutSeconds": String(args.timeoutSeconds ?? 5400),
          };
    const annotations =
      args.annotations === undefined && Object.keys(wait).length === 0
        ? undefined
        : pulumi.output(args.annotations ?? {}).apply((a) => ({ ...a, ...wait }));
    this.resource = new k8s.apiextensions.CustomResource(
      name,
      {
        apiVersion: API_VERSION,
        kind: KIND,
        metadata: {
          name: objectName,
          namespace,
          ...(args.labels === undefined ? {} : { labels: args.labels }),
          ...(annotations === undefined ? {} : { annotations }),
        },
        spec: checkedSpec,
        // Declared so that the provider's read-back of the status becomes an output.
        status: undefined,
      },
      { parent: this },
    );
    const live = this.resource as unknown as { status: pulumi.Output<Status | undefined> };
    this.status = live.status;
    const computed = pulumi.interpolate`http://${objectName}.${namespace}.svc:${VLLM_PORT}/v1`;
    this.endpoint = pulumi.all([this.status, computed]).apply(([s, url]) => s?.endpoint ?? url);
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
