/**
 * How the operator itself is delivered: the objects that install it (ServiceAccount,
 * generated RBAC, Deployment, metrics Service, leader Lease), as plain manifests.
 *
 * The Pulumi component declares exactly these; the Helm chart's templates render the
 * same objects (its RBAC template and CRD copy are generated from the same sources by
 * scripts/gen-chart.ts, and the integration test compares its Deployment with this one).
 * Pure code: no I/O except reading the package version.
 */
import { readFileSync } from "node:fs";
import { rbacManifests } from "../controller/rbac.ts";
import { OPERATOR_NAME, RUN_DEFAULTS } from "../util/identity.ts";

/** Name of the chart, of the container image and of every object the install creates. */
export const OPERATOR_APP = OPERATOR_NAME;
/** Where the Dockerfile's image is published; the chart's and Pulumi's default. */
export const IMAGE_REPOSITORY = "ghcr.io/mistral-small-operator/operator";
/** `msd run --port`: /healthz, /readyz and /metrics. */
export const METRICS_PORT = RUN_DEFAULTS.port;
/** The Lease `msd run` elects its leader with (src/controller/manager.ts). */
export const LEASE_NAME = OPERATOR_NAME;
/** The non-root user of the runtime image (distroless `nonroot`). */
export const RUN_AS_USER = 65532;
export const DEFAULT_NAMESPACE = "mistral-small-system";
export const DEFAULT_LEASE_DURATION_SECONDS = RUN_DEFAULTS.leaseDurationSeconds;
export const DEFAULT_LOG_LEVEL = RUN_DEFAULTS.logLevel;

/** The operator's version: package.json's, also the chart's appVersion and the image tag. */
export function appVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as {
    version: string;
  };
  return pkg.version;
}

export function defaultImage(): string {
  return `${IMAGE_REPOSITORY}:${appVersion()}`;
}

export interface ResourceRequirements {
  requests?: Record<string, string>;
  limits?: Record<string, string>;
}

export const DEFAULT_RESOURCES: Required<ResourceRequirements> = {
  requests: { cpu: "100m", memory: "128Mi" },
  limits: { memory: "512Mi" },
};

export interface OperatorInstallOptions {
  /** Name of the Deployment, ServiceAccount, Service and RBAC objects. */
  readonly name: string;
  readonly namespace: string;
  readonly image?: string;
  readonly imagePullPolicy?: "Always" | "IfNotPresent" | "Never";
  readonly replicas?: number;
  readonly resources?: ResourceRequirements;
  readonly leaseDurationSeconds?: number;
  /** `msd run --log-level`: trace, debug, info (default), warn, error, fatal or silent. */
  readonly logLevel?: string;
  /** Watch this namespace only (`msd run --namespace`); all namespaces when omitted. */
  readonly watchNamespace?: string;
  /** Extra labels on every object (e.g. Helm's or Pulumi's own). */
  readonly labels?: Record<string, string>;
}

type Manifest = Record<string, unknown> & {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
};

export function selectorLabels(name: string): Record<string, string> {
  return { "app.kubernetes.io/name": OPERATOR_APP, "app.kubernetes.io/instance": name };
}

export function operatorLabels(
  o: Pick<OperatorInstallOptions, "name" | "labels">,
): Record<string, string> {
  return {
    ...selectorLabels(o.name),
    "app.kubernetes.io/component": "operator",
    "app.kubernetes.io/part-of": "mistral-small-4",
    "app.kubernetes.io/version": appVersion(),
    ...o.labels,
  };
}

/** `msd run` flags for one install. */
export function operatorArgs(o: OperatorInstallOptions): string[] {
  return [
    `--port=${METRICS_PORT}`,
    `--lease-namespace=${o.namespace}`,
    `--lease-duration=${o.leaseDurationSeconds ?? DEFAULT_LEASE_DURATION_SECONDS}`,
    `--log-level=${o.logLevel ?? DEFAULT_LOG_LEVEL}`,
    ...(o.watchNamespace === undefined || o.watchNamespace === ""
      ? []
      : [`--namespace=${o.watchNamespace}`]),
  ];
}

/** Restricted pod security (the Kubernetes "restricted" profile) for the operator pod. */
export const POD_SECURITY_CONTEXT = {
  runAsNonRoot: true,
  runAsUser: RUN_AS_USER,
  runAsGroup: RUN_AS_USER,
  seccompProfile: { type: "RuntimeDefault" },
} as const;

export const CONTAINER_SECURITY_CONTEXT = {
  allowPrivilegeEscalation: false,
  readOnlyRootFilesystem: true,
  runAsNonRoot: true,
  capabilities: { drop: ["ALL"] },
  seccompProfile: { type: "RuntimeDefault" },
} as const;

/** The operator pod's spec: what the chart's Deployment template must render too. */
export function operatorPodSpec(o: OperatorInstallOptions): Record<string, unknown> {
  return {
    serviceAccountName: o.name,
    automountServiceAccountToken: true,
    enableServiceLinks: false,
    terminationGracePeriodSeconds: 30,
    securityContext: POD_SECURITY_CONTEXT,
    affinity: {
      // Two replicas on two nodes, when there are two.
      podAntiAffinity: {
        preferredDuringSchedulingIgnoredDuringExecution: [
          {
            weight: 100,
            podAffinityTerm: {
              topologyKey: "kubernetes.io/hostname",
              labelSelector: { matchLabels: selectorLabels(o.name) },
            },
          },
        ],
      },
    },
    containers: [
      {
        name: "operator",
        image: o.image ?? defaultImage(),
        imagePullPolicy: o.imagePullPolicy ?? "IfNotPresent",
        args: operatorArgs(o),
        env: [
          { name: "POD_NAME", valueFrom: { fieldRef: { fieldPath: "metadata.name" } } },
          { name: "POD_NAMESPACE", valueFrom: { fieldRef: { fieldPath: "metadata.namespace" } } },
        ],
        ports: [{ name: "metrics", containerPort: METRICS_PORT, protocol: "TCP" }],
        livenessProbe: {
          httpGet: { path: "/healthz", port: "metrics" },
          initialDelaySeconds: 5,
          periodSeconds: 10,
          timeoutSeconds: 2,
          failureThreshold: 3,
        },
        readinessProbe: {
          httpGet: { path: "/readyz", port: "metrics" },
          periodSeconds: 5,
          timeoutSeconds: 2,
          failureThreshold: 3,
        },
        resources: o.resources ?? DEFAULT_RESOURCES,
        securityContext: CONTAINER_SECURITY_CONTEXT,
      },
    ],
  };
}

/** apiVersion, kind and metadata of one object of the install: in its namespace, with its labels. */
function operatorObject(
  o: OperatorInstallOptions,
  apiVersion: string,
  kind: string,
  name: string = o.name,
): Manifest {
  return {
    apiVersion,
    kind,
    metadata: { name, namespace: o.namespace, labels: operatorLabels(o) },
  };
}

export function operatorServiceAccount(o: OperatorInstallOptions): Manifest {
  return operatorObject(o, "v1", "ServiceAccount");
}

export function operatorDeployment(o: OperatorInstallOptions): Manifest {
  return {
    ...operatorObject(o, "apps/v1", "Deployment"),
    spec: {
      replicas: o.replicas ?? 2,
      revisionHistoryLimit: 5,
      selector: { matchLabels: selectorLabels(o.name) },
      template: {
        metadata: { labels: operatorLabels(o) },
        spec: operatorPodSpec(o),
      },
    },
  };
}

export function metricsService(o: OperatorInstallOptions): Manifest {
  return {
    ...operatorObject(o, "v1", "Service", `${o.name}-metrics`),
    spec: {
      type: "ClusterIP",
      selector: selectorLabels(o.name),
      ports: [{ name: "metrics", port: METRICS_PORT, targetPort: "metrics", protocol: "TCP" }],
    },
  };
}

/**
 * The leader-election Lease, declared by the installer (empty: the operator fills it)
 * so that uninstalling removes it too instead of leaving it behind.
 */
export function leaderLease(o: OperatorInstallOptions): Manifest {
  return operatorObject(o, "coordination.k8s.io/v1", "Lease", LEASE_NAME);
}

/**
 * A drain evicts at most one operator pod at a time, so the standby takes over (the chart's
 * templates/poddisruptionbudget.yaml renders the same budget by default).
 */
export function operatorPdb(o: OperatorInstallOptions): Manifest {
  return {
    ...operatorObject(o, "policy/v1", "PodDisruptionBudget"),
    spec: {
      selector: { matchLabels: selectorLabels(o.name) },
      maxUnavailable: 1,
      unhealthyPodEvictionPolicy: "AlwaysAllow",
    },
  };
}

/** The generated least-privilege RBAC, bound to the operator's ServiceAccount. */
export function operatorRbac(o: OperatorInstallOptions): Manifest[] {
  return rbacManifests(o.name, o.namespace, {
    kind: "ServiceAccount",
    name: o.name,
    namespace: o.namespace,
  }).map((m) => {
    const meta = m.metadata as { name: string; namespace?: string };
    return { ...m, metadata: { ...meta, labels: operatorLabels(o) } } as Manifest;
  });
}

/** Everything but the CRDs and the namespace, in apply order. */
export function operatorManifests(o: OperatorInstallOptions): Manifest[] {
  return [
    operatorServiceAccount(o),
    ...operatorRbac(o),
    leaderLease(o),
    operatorDeployment(o),
    operatorPdb(o),
    metricsService(o),
  ];
}
