/**
 * The objects the operator reads, typed by resource. Built-in kinds take client-node's model
 * types in their wire form (timestamps are RFC 3339 strings in JSON; client-node's models say
 * Date because its own serializer converts them, which this client does not). Kinds from
 * other projects' CRDs carry the fields the operator reads, with the Go type they come from.
 *
 * `ObjectOf<R>` gives the type for a RESOURCES entry, so a cache, a list or a get of a kind
 * is typed by the resource it is made for, with no cast at the reader.
 */
import type {
  CoreV1Event,
  EventsV1Event,
  V1Deployment,
  V1Job,
  V1Lease,
  V1Namespace,
  V1NetworkPolicy,
  V1Node,
  V1ObjectMeta,
  V1PersistentVolume,
  V1PersistentVolumeClaim,
  V1Pod,
  V1PodDisruptionBudget,
  V1Service,
  V2HorizontalPodAutoscaler,
} from "@kubernetes/client-node";
import type { Status } from "../api/schema.ts";
import type { RESOURCES, ResourceType } from "./resources.ts";

/** A client-node model as JSON carries it: every Date an RFC 3339 string. */
export type Wire<T> = T extends Date
  ? string
  : T extends readonly (infer U)[]
    ? Wire<U>[]
    : T extends object
      ? { [K in keyof T]: Wire<T[K]> }
      : T;

/** Metadata of an object the API server returned: it always has a name. */
export type ObjectMeta = Wire<V1ObjectMeta> & { name: string };

/** What every object has; a kind's own fields come from its type below. */
export interface KubeObject {
  apiVersion?: string | undefined;
  kind?: string | undefined;
  metadata: ObjectMeta;
}

/** Any object a request can address by name: what apply and update send. */
export interface Addressed {
  apiVersion?: string | undefined;
  kind?: string | undefined;
  metadata: { name: string; namespace?: string | undefined };
}

/** A client-node model as the API server returns it: in wire form, with metadata. */
export type Live<T> = Omit<Wire<T>, "apiVersion" | "kind" | "metadata"> & KubeObject;

export type Deployment = Live<V1Deployment>;
export type Service = Live<V1Service>;
export type PersistentVolumeClaim = Live<V1PersistentVolumeClaim>;
export type PodDisruptionBudget = Live<V1PodDisruptionBudget>;
export type Job = Live<V1Job>;
export type NetworkPolicy = Live<V1NetworkPolicy>;
export type HorizontalPodAutoscaler = Live<V2HorizontalPodAutoscaler>;
export type Pod = Live<V1Pod>;
export type CoreEvent = Live<CoreV1Event>;
export type Event = Live<EventsV1Event>;
export type Lease = Live<V1Lease>;
export type Node = Live<V1Node>;
export type PersistentVolume = Live<V1PersistentVolume>;
export type Namespace = Live<V1Namespace>;

/** A metav1.Condition as other controllers write it (Karpenter's status.Condition is one). */
export interface WireCondition {
  type: string;
  status: string;
  reason?: string | undefined;
  message?: string | undefined;
  lastTransitionTime?: string | undefined;
}

/**
 * A MistralSmallDeployment as stored: the spec is parsed by the schema on every reconcile
 * (it may be anything an older or newer release accepted); the status is what we wrote.
 */
export interface MistralSmallDeploymentObject extends KubeObject {
  spec?: unknown;
  status?: Status | undefined;
}

/** Karpenter's NodePool (sigs.k8s.io/karpenter pkg/apis/v1/nodepool.go): read for its labels. */
export interface NodePool extends KubeObject {
  spec?: unknown;
  status?: { conditions?: WireCondition[] | undefined } | undefined;
}

/** Karpenter's NodeClaim (sigs.k8s.io/karpenter pkg/apis/v1/nodeclaim_status.go), the fields read. */
export interface NodeClaim extends KubeObject {
  spec?: unknown;
  status?:
    | {
        nodeName?: string | undefined;
        providerID?: string | undefined;
        conditions?: WireCondition[] | undefined;
      }
    | undefined;
}

/** A custom object the operator only applies and compares (KEDA ScaledObject, PodMonitor). */
export interface CustomObject extends KubeObject {
  spec?: unknown;
  status?: unknown;
}

type Resources = typeof RESOURCES;

/** The object type of each RESOURCES entry, by the same key. */
export interface ObjectTypes {
  msd: MistralSmallDeploymentObject;
  deployment: Deployment;
  service: Service;
  pvc: PersistentVolumeClaim;
  pdb: PodDisruptionBudget;
  nodePool: NodePool;
  nodeClaim: NodeClaim;
  pod: Pod;
  job: Job;
  coreEvent: CoreEvent;
  event: Event;
  lease: Lease;
  hpa: HorizontalPodAutoscaler;
  scaledObject: CustomObject;
  node: Node;
  persistentVolume: PersistentVolume;
  namespace: Namespace;
  networkPolicy: NetworkPolicy;
  podMonitor: CustomObject;
}

type Matching<R> = {
  [K in keyof Resources]: R extends Resources[K] ? ObjectTypes[K] : never;
}[keyof Resources];

/** The object a resource holds: its ObjectTypes entry, or any object for a resource not listed. */
export type ObjectOf<R extends ResourceType> = [Matching<R>] extends [never]
  ? KubeObject
  : Matching<R>;

type Assert<T extends true> = T;
/** Fails to compile when a RESOURCES entry has no ObjectTypes entry. */
export type EveryResourceTyped = Assert<
  [Exclude<keyof Resources, keyof ObjectTypes>] extends [never] ? true : false
>;
