/**
 * `MistralSmallOperator`: the operator installed by Pulumi. It declares the same objects as
 * the Helm chart, built by the same code (src/delivery/manifests.ts, with the generated RBAC
 * rules of src/operator/rbac.ts) plus the CRDs from the repository's crds/ folder.
 */
import { readFileSync, readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import * as pulumi from "@pulumi/pulumi";
import * as k8s from "@pulumi/kubernetes";
import { parse } from "yaml";
import {
  DEFAULT_NAMESPACE,
  METRICS_PORT,
  OPERATOR_APP,
  operatorManifests,
  type OperatorInstallOptions,
} from "../../src/delivery/manifests.ts";

const CRDS_DIR = fileURLToPath(new URL("../../crds/", import.meta.url));

/**
 * The install options shared with the Helm chart (image, replicas, resources, lease, watched
 * namespace; see OperatorInstallOptions), all optional here, plus what only Pulumi decides.
 */
export interface MistralSmallOperatorArgs
  extends Partial<Omit<OperatorInstallOptions, "labels" | "name" | "namespace">> {
  /** Namespace of the operator (its Lease, ServiceAccount, Deployment). Default mistral-small-system. */
  readonly namespace?: string;
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

/** The CRDs of crds/, parsed. */
export function crdManifests(): Record<string, unknown>[] {
  return readdirSync(CRDS_DIR)
    .filter((f) => f.endsWith(".yaml"))
    .sort()
    .map((f) => parse(readFileSync(join(CRDS_DIR, f), "utf8")) as Record<string, unknown>);
}

type Manifest = ReturnType<typeof operatorManifests>[number];

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
      namespace: args.namespace ?? DEFAULT_NAMESPACE,
      ...(args.image === undefined ? {} : { image: args.image }),
      ...(args.imagePullPolicy === undefined ? {} : { imagePullPolicy: args.imagePullPolicy }),
      ...(args.replicas === undefined ? {} : { replicas: args.replicas }),
      ...(args.resources === undefined ? {} : { resources: args.resources }),
      ...(args.leaseDurationSeconds === undefined
        ? {}
        : { leaseDurationSeconds: args.leaseDurationSeconds }),
      ...(args.watchNamespace === undefined ? {} : { watchNamespace: args.watchNamespace }),
      labels: { "app.kubernetes.io/managed-by": "pulumi" },
    };
    const child = { parent: this };

    const before: pulumi.Resource[] = [];
    if (args.createNamespace !== false) {
      const ns = new k8s.core.v1.Namespace(
        `${name}-namespace`,
        { metadata: { name: install.namespace } },
        child,
      );
      this.objects.set(`Namespace/${install.namespace}`, ns);
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
    for (const m of operatorManifests(install)) {
      const key = `${m.kind}/${m.metadata.name}`;
      const r = this.declare(name, m, args, deps, [...rbac, ...this.crds]);
      if (m.kind === "Deployment") deployment = r as k8s.apps.v1.Deployment;
      else rbac.push(r);
      this.objects.set(key, r);
    }

    this.namespace = pulumi.output(install.namespace);
    this.serviceAccountName = pulumi.output(install.name);
    this.deploymentName = deployment!.metadata.name;
    this.metricsUrl = pulumi.output(
      `http://${install.name}-metrics.${install.namespace}.svc:${METRICS_PORT}/metrics`,
    );
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
    switch (m.kind) {
      case "ServiceAccount":
        return new k8s.core.v1.ServiceAccount(id, m as k8s.core.v1.ServiceAccountArgs, opts);
      case "ClusterRole":
        return new k8s.rbac.v1.ClusterRole(id, m as k8s.rbac.v1.ClusterRoleArgs, opts);
      case "ClusterRoleBinding":
        return new k8s.rbac.v1.ClusterRoleBinding(
          id,
          m as unknown as k8s.rbac.v1.ClusterRoleBindingArgs,
          opts,
        );
      case "Role":
        return new k8s.rbac.v1.Role(id, m as k8s.rbac.v1.RoleArgs, opts);
      case "RoleBinding":
        return new k8s.rbac.v1.RoleBinding(id, m as unknown as k8s.rbac.v1.RoleBindingArgs, opts);
      case "Lease":
        return new k8s.coordination.v1.Lease(id, m as k8s.coordination.v1.LeaseArgs, opts);
      case "Service":
        return new k8s.core.v1.Service(id, m as k8s.core.v1.ServiceArgs, opts);
      case "Deployment": {
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
      default:
        throw new Error(`MistralSmallOperator: no Pulumi type for ${m.kind}`);
    }
  }
}
