/**
 * Security-relevant pod fields the operator sets explicitly, so it owns them.
 *
 * Server-side apply only owns the fields an applier sends: a field we leave out (hostNetwork,
 * privileged, capabilities.add) can be set by a hand patch and stays, and a rollout then runs
 * privileged pods. Sending the safe value makes the field ours, so a hand edit shows up as a
 * difference to the desired object and the next reconcile applies it back (with force).
 */
import type { V1Container, V1PodSpec, V1SecurityContext } from "@kubernetes/client-node";

/** Pod-level fields pinned to false: vLLM needs neither the host's namespaces nor API access. */
export const PINNED_POD_FIELDS = {
  hostNetwork: false,
  hostPID: false,
  hostIPC: false,
  automountServiceAccountToken: false,
} as const;

/**
 * Bools the API server leaves out of the stored object when false (`omitempty` on a plain bool in
 * k8s.io/api core/v1 PodSpec), so a live object never shows them although we applied them.
 */
const OMITTED_WHEN_FALSE = ["hostNetwork", "hostPID", "hostIPC"] as const;

function hardenContainer(c: V1Container): V1Container {
  const sc: V1SecurityContext = c.securityContext ?? {};
  return {
    ...c,
    securityContext: {
      ...sc,
      privileged: false,
      allowPrivilegeEscalation: false,
      // An empty `add` is still sent, so a hand-added capability is ours to remove.
      capabilities: {
        ...sc.capabilities,
        drop: sc.capabilities?.drop ?? ["ALL"],
        add: sc.capabilities?.add ?? [],
      },
    },
  };
}

/** The pod spec with every security-relevant field set explicitly (renderer values kept). */
export function hardenPodSpec(spec: V1PodSpec): V1PodSpec {
  return {
    ...spec,
    ...PINNED_POD_FIELDS,
    containers: spec.containers.map(hardenContainer),
    ...(spec.initContainers === undefined
      ? {}
      : { initContainers: spec.initContainers.map(hardenContainer) }),
  };
}

type Json = Record<string, unknown>;

function podSpecOf(obj: unknown): Json | undefined {
  const spec = (obj as { spec?: { template?: { spec?: Json } } } | undefined)?.spec;
  return spec?.template?.spec;
}

/**
 * The desired Deployment as the API server would store it: pinned bools that are stored only
 * when true are dropped, so comparing with the live object does not see a difference forever.
 */
export function asStored<T>(deployment: T): T {
  const spec = podSpecOf(deployment);
  if (spec === undefined) return deployment;
  const copy = structuredClone(deployment);
  const s = podSpecOf(copy)!;
  for (const k of OMITTED_WHEN_FALSE) if (s[k] === false) delete s[k];
  return copy;
}

function leaves(value: unknown, path: string, out: Map<string, unknown>): void {
  if (value !== null && typeof value === "object" && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value as Json)) leaves(v, `${path}.${k}`, out);
  } else {
    out.set(path, value);
  }
}

/** Security leaves of a pod spec: pinned pod fields, pod and container security contexts. */
function securityLeaves(spec: Json | undefined): Map<string, unknown> {
  const out = new Map<string, unknown>();
  if (spec === undefined) return out;
  for (const k of Object.keys(PINNED_POD_FIELDS)) out.set(k, spec[k]);
  leaves(spec.securityContext ?? {}, "securityContext", out);
  for (const group of ["initContainers", "containers"] as const) {
    for (const c of (spec[group] as (Json & { name: string })[] | undefined) ?? []) {
      leaves(c.securityContext ?? {}, `${group}[${c.name}].securityContext`, out);
    }
  }
  return out;
}

function same(path: string, want: unknown, have: unknown): boolean {
  if (JSON.stringify(want) === JSON.stringify(have)) return true;
  const omitted = OMITTED_WHEN_FALSE.some((k) => path === k);
  if (omitted && want === false && have === undefined) return true;
  return Array.isArray(want) && want.length === 0 && have === undefined;
}

const show = (v: unknown) => (v === undefined ? "unset" : JSON.stringify(v));

/**
 * Every security field of the live pod template that differs from the desired one, as
 * `spec.template.spec.<path>: <live> -> <desired>`; empty when nothing drifted.
 */
export function securityDrift(desired: unknown, live: unknown): string[] {
  const want = securityLeaves(podSpecOf(desired));
  const have = securityLeaves(podSpecOf(live));
  const drift: string[] = [];
  for (const [path, w] of want) {
    const h = have.get(path);
    if (!same(path, w, h)) drift.push(`spec.template.spec.${path}: ${show(h)} -> ${show(w)}`);
  }
  return drift;
}
