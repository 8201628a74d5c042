/**
 * `MistralSmallOperator`: the operator installed by Pulumi. It declares the same objects as
 * the Helm chart, built by the same code (the operator's src/delivery/manifests.ts, with the
 * generated RBAC rules of src/controller/rbac.ts) plus the CRDs of crds/, all vendored into
 * ./generated/ by scripts/gen-infra.ts so that this package imports nothing outside infra/.
 */
import * as pulumi from "@pulumi/pulumi";
import * as k8s from "@pulumi/kubernetes";
import {
  DEFAULT_NAMESPACE,
  METRICS_PORT,
  OPERATOR_APP,
  operatorManifests,
  type OperatorInstallOptions,
} from "./generated/delivery/manifests.ts";
import { CRDS } from "./generated/crds.ts";

/**
 * Stand-ins for the values that may be Outputs: the manifests are built from them, then each
 * string holding one becomes an Output with the resolved value (so every object is declared
 * at once, in preview too, not inside an apply).
 */
const PLACEHOLDERS = {
  namespace: "mso-placeholder-namespace",
  image: "mso-placeholder-image",
  watchNamespace: "mso-placeholder-watch-namespace",
} as const;

/**
 * The install options shared with the Helm chart (image, replicas, resources, lease, watched
 * namespace; see OperatorInstallOptions), all optional here, plus what only Pulumi decides.
 * namespace, image and watchNamespace may be Outputs of other resources.
 */
export interface MistralSmallOperatorArgs
  extends Partial<
    Omit<OperatorInstallOptions, "labels" | "name" | "namespace" | "image" | "watchNamespace">
  > {
  /** Namespace of the operator (its Lease, ServiceAccount, Deployment). Default mistral-small-system. */
  readonly namespace?: pulumi.Input<string>;
  /** The operator image; default the released image of this package's version. */
  readonly image?: pulumi.Input<string>;
  /** Watch this namespace only (`msd run --namespace`); all namespaces when omitted. */
  readonly watchNamespace?: pulumi.Input<string>;
  /** Create the namespace (default true); false when it exists already. */
  readonly createNamespace?: boolean;
  /** Name of the operator's objects. Default mistral-small-operator. */
  readonly name?: string;
  /** Install the CRDs (default true). */
  readonly installCrds?: boolean;
  /**
   * Leave the CRDs in the cluster when this component is deleted (default true, like Helm):
   * deleting a CRD deletes every MistralSmallDeployment with it.
   */
  readonly retainCrdsOnDelete?: boolean;
  /** Do not wait for the operator's Deployment to become available (pulumi.com/skipAwait). */
  readonly skipAwait?: boolean;
}

/** The CRDs of crds/ (vendored as data). */
export function crdManifests(): Record<string, unknown>[] {
  return CRDS.map((c) => structuredClone(c));
}

type Manifest = ReturnType<typeof operatorManifests>[number];

/** `value` with every placeholder in its strings replaced by the resolved Inputs. */
function substitute(value: unknown, inputs: Record<string, pulumi.Output<string>>): unknown {
  if (typeof value === "string") {
    const used = Object.entries(PLACEHOLDERS).filter(([, p]) => value.includes(p));
    if (used.length === 0) return value;
    return pulumi
      .all(used.map(([k]) => inputs[k]!))
      .apply((resolved) => used.reduce((s, [, p], i) => s.replaceAll(p, resolved[i]!), value));
  }
  if (Array.isArray(value)) return value.map((v) => substitute(v, inputs));
  if (typeof value === "object" && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, substitute(v, inputs)]));
  }
  return value;
}

/** The typed Pulumi resource of each kind an install holds, but the Deployment (see declare). */
const RESOURCE_TYPES = new Map<
  string,
  new (name: string, args: never, opts: pulumi.CustomResourceOptions) => pulumi.CustomResource
>([
  ["ServiceAccount", k8s.core.v1.ServiceAccount],
  ["ClusterRole", k8s.rbac.v1.ClusterRole],
  ["ClusterRoleBinding", k8s.rbac.v1.ClusterRoleBinding],
  ["Role", k8s.rbac.v1.Role],
  ["RoleBinding", k8s.rbac.v1.RoleBinding],
  ["Lease", k8s.coordination.v1.Lease],
  ["Service", k8s.core.v1.Service],
  ["PodDisruptionBudget", k8s.policy.v1.PodDisruptionBudget],
]);

export class MistralSmallOperator extends pulumi.ComponentResource {
  readonly namespace: pulumi.Output<string>;
  readonly serviceAccountName: pulumi.Output<string>;
  readonly deploymentName: pulumi.Output<string>;
  /** In-cluster URL of the operator's Prometheus metrics. */
  readonly metricsUrl: pulumi.Output<string>;
  readonly crds: k8s.apiextensions.v1.CustomResourceDefinition[] = [];
  /** Every Kubernetes object this component declares, by kind/name. */
  readonly objects = new Map<string, pulumi.CustomResource>();

  constructor(
    name: string,
    args: MistralSmallOperatorArgs = {},
    opts?: pulumi.ComponentResourceOptions,
  ) {
    super("mistral-small:index:MistralSmallOperator", name, {}, opts);
    const install: OperatorInstallOptions = {
      name: args.name ?? OPERATOR_APP,
      namespace: PLACEHOLDERS.namespace,
      ...(args.image === undefined ? {} : { image: PLACEHOLDERS.image }),
      ...(args.imagePullPolicy === undefined ? {} : { imagePullPolicy: args.imagePullPolicy }),
      ...(args.replicas === undefined ? {} : { replicas: args.replicas }),
      ...(args.resources === undefined ? {} : { resources: args.resources }),
      ...(args.leaseDurationSeconds === undefined
        ? {}
        : { leaseDurationSeconds: args.leaseDurationSeconds }),
      ...(args.watchNamespace === undefined ? {} : { watchNamespace: PLACEHOLDERS.watchNamespace }),
      labels: { "app.kubernetes.io/managed-by": "pulumi" },
    };
    const namespace = pulumi.output(args.namespace ?? DEFAULT_NAMESPACE);
    const inputs = {
      namespace,
      image: pulumi.output(args.image ?? ""),
      watchNamespace: pulumi.output(args.watchNamespace ?? ""),
    };
    const child = { parent: this };

    const before: pulumi.Resource[] = [];
    if (args.createNamespace !== false) {
      const ns = new k8s.core.v1.Namespace(
        `${name}-namespace`,
        { metadata: { name: namespace } },
        child,
      );
      this.objects.set("Namespace", ns);
      before.push(ns);
    }
    if (args.installCrds !== false) {
      for (const crd of crdManifests()) {
        const meta = crd.metadata as { name: string };
        const r = new k8s.apiextensions.v1.CustomResourceDefinition(
          `${name}-${meta.name}`,
          crd as unknown as k8s.apiextensions.v1.CustomResourceDefinitionArgs,
          { ...child, retainOnDelete: args.retainCrdsOnDelete !== false },
        );
        this.crds.push(r);
        this.objects.set(`CustomResourceDefinition/${meta.name}`, r);
      }
    }

    const deps = { parent: this, dependsOn: before };
    const rbac: pulumi.Resource[] = [];
    let deployment: k8s.apps.v1.Deployment | undefined;
    for (const built of operatorManifests(install)) {
      const key = `${built.kind}/${built.metadata.name}`;
      const m = substitute(built, inputs) as Manifest;
      const r = this.declare(name, m, args, deps, [...rbac, ...this.crds]);
      if (m.kind === "Deployment") deployment = r as k8s.apps.v1.Deployment;
      else rbac.push(r);
      this.objects.set(key, r);
    }

    this.namespace = namespace;
    this.serviceAccountName = pulumi.output(install.name);
    this.deploymentName = deployment!.metadata.name;
    this.metricsUrl = pulumi.interpolate`http://${install.name}-metrics.${namespace}.svc:${METRICS_PORT}/metrics`;
    this.registerOutputs({
      namespace: this.namespace,
      serviceAccountName: this.serviceAccountName,
      deploymentName: this.deploymentName,
      metricsUrl: this.metricsUrl,
    });
  }

  /** One manifest as its typed Pulumi resource; the Deployment waits for RBAC and CRDs. */
  private declare(
    name: string,
    m: Manifest,
    args: MistralSmallOperatorArgs,
    opts: pulumi.CustomResourceOptions & { dependsOn: pulumi.Resource[] },
    deploymentDeps: pulumi.Resource[],
  ): pulumi.CustomResource {
    const id = `${name}-${m.kind.toLowerCase()}`;
    if (m.kind === "Deployment") {
      const dep = m as k8s.apps.v1.DeploymentArgs & { metadata: Manifest["metadata"] };
      const metadata =
        args.skipAwait === true
          ? { ...dep.metadata, annotations: { "pulumi.com/skipAwait": "true" } }
          : dep.metadata;
      return new k8s.apps.v1.Deployment(
        id,
        { ...dep, metadata },
        { ...opts, dependsOn: [...opts.dependsOn, ...deploymentDeps] },
      );
    }
    const Resource = RESOURCE_TYPES.get(m.kind);
    if (Resource === undefined)
      throw new Error(`MistralSmallOperator: no Pulumi type for ${m.kind}`);
    return new Resource(id, m as never, opts);
  }
}
