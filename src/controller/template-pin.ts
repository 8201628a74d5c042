/**
 * Operator upgrades never restart vLLM pods on their own.
 *
 * When a new operator release renders a different pod template for an unchanged spec (a new
 * default, a new label), applying it would restart every replica (~120 GB reload each). Instead
 * the Deployment keeps the template the operator last applied, the resource gets a
 * `TemplateUpdateAvailable` condition (and one event) naming what would change, and the new
 * template is applied only when the owner opts in:
 *   - the annotation `serving.mistralsmall.dev/accept-template: <offered hash>` on the resource, or
 *   - a change of a spec field that reaches the pod template (that change restarts pods anyway).
 *
 * What "last applied" is comes from a record on the Deployment's own metadata (not the pod
 * template, so writing it restarts nothing): the template's hash, a digest of the spec fields it
 * was rendered from, and the template itself (gzip + base64), so it can be applied again exactly.
 * Everything but the pod template (replicas, strategy, the Service, ...) still reconciles.
 *
 * Pure: the reconciler passes in what it read and applies what comes out.
 */
import { gunzipSync, gzipSync } from "node:zlib";
import type { V1Deployment, V1PodTemplateSpec } from "@kubernetes/client-node";
import { GROUP, KIND, type MistralSmallDeployment, type Spec, type Status } from "../api/schema.ts";
import { isPlainObject, sortKeys } from "../util/json.ts";
import { templateHashOf } from "../render/deployment.ts";
import type { Desired, Manifest } from "../render/index.ts";
import { TEMPLATE_HASH_ANNOTATION, shortHash } from "../render/names.ts";
import { hardenPodSpec } from "../render/security.ts";
import type { EventInput } from "./events.ts";
import { REASONS, condition, jsonEqual, type Condition } from "./status.ts";

/** On the Deployment: digest of the spec fields the applied template was rendered from. */
export const TEMPLATE_SPEC_ANNOTATION = `${GROUP}/template-spec`;
/** On the Deployment: the resource's metadata.generation the record was last written at. */
export const TEMPLATE_GENERATION_ANNOTATION = `${GROUP}/template-generation`;
/** On the Deployment: the applied pod template, gzip + base64 of its JSON. */
export const TEMPLATE_RECORD_ANNOTATION = `${GROUP}/template`;
/** On the resource, set by its owner: the offered template hash they accept. */
export const ACCEPT_TEMPLATE_ANNOTATION = `${GROUP}/accept-template`;
export const TEMPLATE_UPDATE_CONDITION = "TemplateUpdateAvailable";

/**
 * Spec fields no pod template is rendered from: the autoscaler changes `replicas` through the
 * scale subresource, which bumps the generation, so a generation change is no consent to a
 * restart. A unit test checks that changing each leaves the template hash as it is.
 */
export const OUTSIDE_TEMPLATE: readonly (readonly string[])[] = [
  ["replicas"],
  ["autoscaling"],
  ["monitoring"],
  ["access", "networkPolicy"],
];

export class TemplateRecordError extends Error {
  override name = "TemplateRecordError";
}

/** What the Deployment says the operator last applied. */
export interface TemplateRecord {
  readonly hash: string;
  readonly specDigest: string;
  /** Absent in a record without it: then only the digest tells. */
  readonly generation?: number;
  /** The annotation's value as stored, carried over verbatim while the template is held. */
  readonly encoded: string;
  readonly template: V1PodTemplateSpec;
}

/** Digest of the spec minus OUTSIDE_TEMPLATE: equal digests, same template from one renderer. */
export function templateSpecDigest(spec: Spec): string {
  const copy = structuredClone(spec) as Record<string, unknown>;
  for (const path of OUTSIDE_TEMPLATE) {
    let node: Record<string, unknown> | undefined = copy;
    for (const key of path.slice(0, -1)) node = node?.[key] as Record<string, unknown> | undefined;
    if (node !== undefined) delete node[path[path.length - 1]!];
  }
  return shortHash(JSON.stringify(sortKeys(copy)), 16);
}

export function encodeTemplate(template: V1PodTemplateSpec): string {
  return gzipSync(JSON.stringify(sortKeys(template))).toString("base64");
}

export function decodeTemplate(encoded: string): V1PodTemplateSpec {
  let parsed: unknown;
  try {
    parsed = JSON.parse(gunzipSync(Buffer.from(encoded, "base64")).toString("utf8"));
  } catch (err) {
    throw new TemplateRecordError(`${TEMPLATE_RECORD_ANNOTATION} is not gzip + base64 JSON`, {
      cause: err,
    });
  }
  if (!isPlainObject(parsed)) {
    throw new TemplateRecordError(`${TEMPLATE_RECORD_ANNOTATION} does not hold a pod template`);
  }
  return parsed as V1PodTemplateSpec;
}

/**
 * The record on a live Deployment; undefined when it has none (written by a release before
 * this one). Throws TemplateRecordError when it cannot be trusted: it must decode, match its
 * hash, and be hardened already, so a hand edit of the annotation cannot make a held template
 * less safe than what the operator renders.
 */
export function readRecord(
  annotations: Readonly<Record<string, string>> | undefined,
): TemplateRecord | undefined {
  const hash = annotations?.[TEMPLATE_HASH_ANNOTATION];
  const specDigest = annotations?.[TEMPLATE_SPEC_ANNOTATION];
  const encoded = annotations?.[TEMPLATE_RECORD_ANNOTATION];
  if (hash === undefined || specDigest === undefined || encoded === undefined) return undefined;
  const template = decodeTemplate(encoded);
  const actual = templateHashOf(template);
  if (actual !== hash || template.metadata?.annotations?.[TEMPLATE_HASH_ANNOTATION] !== hash) {
    throw new TemplateRecordError(
      `${TEMPLATE_RECORD_ANNOTATION} hashes to ${actual}, not to the recorded ${hash}`,
    );
  }
  if (template.spec === undefined || !jsonEqual(hardenPodSpec(template.spec), template.spec)) {
    throw new TemplateRecordError(
      `${TEMPLATE_RECORD_ANNOTATION} holds a pod spec the operator's hardening would change`,
    );
  }
  const generation = Number(annotations?.[TEMPLATE_GENERATION_ANNOTATION]);
  return {
    hash,
    specDigest,
    encoded,
    template,
    ...(Number.isInteger(generation) ? { generation } : {}),
  };
}

export type ApplyReason =
  | "no-deployment"
  | "unchanged"
  | "no-record"
  | "invalid-record"
  | "spec-changed"
  | "accepted"
  | "no-pods";

export type PinDecision =
  | { readonly action: "apply"; readonly reason: ApplyReason; readonly problem?: string }
  | {
      readonly action: "hold";
      readonly record: TemplateRecord;
      readonly offered: string;
      readonly changes: readonly string[];
    };

export interface PinInput {
  readonly desired: {
    readonly template: V1PodTemplateSpec;
    readonly specDigest: string;
    /** The resource's metadata.generation. */
    readonly generation: number;
  };
  /** The live Deployment, when there is one. */
  readonly live?: {
    readonly annotations?: Readonly<Record<string, string>>;
    /** spec.replicas and status.replicas: with none running, nothing restarts. */
    readonly replicas: number;
  };
  /** The resource's accept-template annotation. */
  readonly accepted?: string;
}

/** Apply the rendered template, or hold the recorded one: the one rule of this file. */
export function decideTemplate(input: PinInput): PinDecision {
  const { desired, live } = input;
  if (live === undefined) return { action: "apply", reason: "no-deployment" };
  const offered = templateHashOf(desired.template);
  if (live.annotations?.[TEMPLATE_HASH_ANNOTATION] === offered) {
    return { action: "apply", reason: "unchanged" };
  }
  let record: TemplateRecord | undefined;
  try {
    record = readRecord(live.annotations);
  } catch (err) {
    if (!(err instanceof TemplateRecordError)) throw err;
    return { action: "apply", reason: "invalid-record", problem: err.message };
  }
  if (record === undefined) return { action: "apply", reason: "no-record" };
  // The same generation: the owner changed nothing (a new schema default may still change the
  // digest, since the new release parses the spec). Else the digest tells whether what changed
  // reaches the pods; `replicas` alone, from the autoscaler, does not.
  const ownerChangedPods =
    record.generation !== desired.generation && record.specDigest !== desired.specDigest;
  if (ownerChangedPods) return { action: "apply", reason: "spec-changed" };
  if (input.accepted === offered) return { action: "apply", reason: "accepted" };
  if (live.replicas === 0) return { action: "apply", reason: "no-pods" };
  return {
    action: "hold",
    record,
    offered,
    changes: templateChanges(record.template, desired.template),
  };
}

const MAX_VALUE_CHARS = 40;

function show(v: unknown): string {
  const s = JSON.stringify(v) ?? "undefined";
  return s.length > MAX_VALUE_CHARS ? `${s.slice(0, MAX_VALUE_CHARS - 1)}…` : s;
}

function namedList(v: unknown): v is { name: string }[] {
  return Array.isArray(v) && v.every((x) => isPlainObject(x) && typeof x.name === "string");
}

/** Paths that differ between two templates, lists of named entries keyed by name. */
export function templateChanges(before: unknown, after: unknown, path = ""): string[] {
  if (jsonEqual(before, after)) return [];
  if (path === `metadata.annotations[${TEMPLATE_HASH_ANNOTATION}]`) return [];
  if (isPlainObject(before) && isPlainObject(after)) {
    const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort();
    return keys.flatMap((k) => templateChanges(before[k], after[k], join(path, k)));
  }
  if (namedList(before) && namedList(after)) {
    const names = [...new Set([...before, ...after].map((x) => x.name))];
    return names.flatMap((n) =>
      templateChanges(
        before.find((x) => x.name === n),
        after.find((x) => x.name === n),
        `${path}[${n}]`,
      ),
    );
  }
  if (before === undefined) return [`${path} added (${show(after)})`];
  if (after === undefined) return [`${path} removed`];
  return [`${path}: ${show(before)} → ${show(after)}`];
}

function join(path: string, key: string): string {
  if (path === "") return key;
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(key) ? `${path}.${key}` : `${path}[${key}]`;
}

/** What status says while a template is held. */
export interface TemplateOffer {
  readonly deployment: string;
  readonly resource: string;
  readonly current: string;
  readonly offered: string;
  readonly changes: readonly string[];
}

export interface PinnedDesired extends Desired {
  readonly decision: PinDecision;
  readonly offer?: TemplateOffer;
}

function isDeployment(o: Manifest): o is Manifest & V1Deployment {
  return o.kind === "Deployment" && o.apiVersion === "apps/v1";
}

/** What pinTemplate reads of the live Deployment (a cache object). */
export interface LiveDeployment {
  readonly metadata: { readonly annotations?: Readonly<Record<string, string>> | undefined };
  readonly spec?: { readonly replicas?: number | undefined } | undefined;
  readonly status?: { readonly replicas?: number | undefined } | undefined;
}

function replicasOf(live: LiveDeployment): number {
  return Math.max(live.spec?.replicas ?? 0, live.status?.replicas ?? 0);
}

/** The rendered objects with the Deployment's record set, and its template held if decided so. */
export function pinTemplate(
  desired: Desired,
  msd: MistralSmallDeployment,
  live: LiveDeployment | undefined,
): PinnedDesired {
  const rendered = desired.objects.find(isDeployment);
  const template = rendered?.spec?.template;
  if (rendered === undefined || template === undefined) {
    return { ...desired, decision: { action: "apply", reason: "no-deployment" } };
  }
  const specDigest = templateSpecDigest(msd.spec);
  const generation = msd.metadata.generation ?? 0;
  const accepted = msd.metadata.annotations?.[ACCEPT_TEMPLATE_ANNOTATION];
  const decision = decideTemplate({
    desired: { template, specDigest, generation },
    ...(live === undefined
      ? {}
      : {
          live: {
            replicas: replicasOf(live),
            ...(live.metadata.annotations === undefined
              ? {}
              : { annotations: live.metadata.annotations }),
          },
        }),
    ...(accepted === undefined ? {} : { accepted }),
  });
  const held = decision.action === "hold" ? decision.record : undefined;
  const deployment: Manifest & V1Deployment = {
    ...rendered,
    metadata: {
      ...rendered.metadata,
      annotations: {
        ...rendered.metadata.annotations,
        [TEMPLATE_HASH_ANNOTATION]: held?.hash ?? desired.templateHash,
        // Current even while held: the held template stands for this spec, as this release
        // parses it, so later changes are judged against it.
        [TEMPLATE_SPEC_ANNOTATION]: specDigest,
        [TEMPLATE_GENERATION_ANNOTATION]: String(generation),
        [TEMPLATE_RECORD_ANNOTATION]: held?.encoded ?? encodeTemplate(template),
      },
    },
    spec: { ...rendered.spec!, template: held?.template ?? template },
  };
  const objects = desired.objects.map((o) => (o === rendered ? deployment : o));
  if (decision.action !== "hold") return { objects, templateHash: desired.templateHash, decision };
  return {
    objects,
    templateHash: decision.record.hash,
    decision,
    offer: {
      deployment: rendered.metadata.name,
      resource: msd.metadata.name,
      current: decision.record.hash,
      offered: decision.offered,
      changes: decision.changes,
    },
  };
}

const SHOWN_CHANGES = 6;

export function offerMessage(o: TemplateOffer): string {
  const more = o.changes.length - SHOWN_CHANGES;
  const changes =
    o.changes.slice(0, SHOWN_CHANGES).join("; ") + (more > 0 ? `; and ${more} more` : "");
  return (
    `this operator release renders a different pod template for the same spec ` +
    `(template-hash ${o.current} → ${o.offered}: ${changes}); Deployment ${o.deployment} keeps ` +
    `${o.current}, since applying it restarts every replica, one at a time. To apply it: ` +
    `kubectl annotate ${KIND.toLowerCase()} ${o.resource} --overwrite ` +
    `${ACCEPT_TEMPLATE_ANNOTATION}=${o.offered} (a change of a spec field the pods use applies it too)`
  );
}

/** The status with the TemplateUpdateAvailable condition set while an offer stands, else absent. */
export function withTemplateOffer(
  status: Status,
  offer: TemplateOffer | undefined,
  previous: Status | undefined,
  now: string,
): Status {
  const others = (status.conditions ?? []).filter((c) => c.type !== TEMPLATE_UPDATE_CONDITION);
  if (offer === undefined) return { ...status, conditions: others };
  const offered = condition(
    TEMPLATE_UPDATE_CONDITION,
    ["True", REASONS.OperatorDefaultsChanged, offerMessage(offer)],
    status.observedGeneration ?? 0,
    (previous?.conditions ?? []) as Condition[],
    now,
  );
  return { ...status, conditions: [...others, offered] };
}

interface ConditionText {
  readonly type: string;
  readonly message: string;
}

/** One event when an offer appears or changes; none while it stands unchanged. */
export function templateOfferEvents(
  before: readonly ConditionText[] | undefined,
  after: readonly ConditionText[] | undefined,
): EventInput[] {
  const find = (cs: readonly ConditionText[] | undefined) =>
    cs?.find((c) => c.type === TEMPLATE_UPDATE_CONDITION);
  const now = find(after);
  if (now === undefined || find(before)?.message === now.message) return [];
  return [
    {
      type: "Normal",
      reason: TEMPLATE_UPDATE_CONDITION,
      action: "HoldTemplate",
      note: now.message,
    },
  ];
}
