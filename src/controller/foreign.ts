/**
 * List entries someone else added to an object we own. Server-side apply merges keyed lists
 * (Service ports by port/protocol, containers and volumes by name) and never removes an entry
 * another field manager added: a hand-added container (say, a privileged sidecar) stays, and a
 * hand-replaced Service port next to ours makes the Service invalid (duplicate port name), so the
 * apply can never succeed. Such lists are put back whole with a JSON merge patch, which
 * replaces lists, before the apply.
 */
type Json = Record<string, unknown>;

interface KeyedList {
  /** Where the list sits, from the object's root. */
  readonly path: readonly string[];
  /** The merge key the API server uses for this list. */
  readonly key: (entry: Json) => string;
}

const byName = (e: Json) => String(e.name);
const LISTS: Record<string, readonly KeyedList[]> = {
  Service: [
    { path: ["spec", "ports"], key: (e) => `${String(e.port)}/${String(e.protocol ?? "TCP")}` },
  ],
  Deployment: [
    { path: ["spec", "template", "spec", "containers"], key: byName },
    { path: ["spec", "template", "spec", "initContainers"], key: byName },
    { path: ["spec", "template", "spec", "volumes"], key: byName },
  ],
};

function at(obj: unknown, path: readonly string[]): unknown {
  let v: unknown = obj;
  for (const p of path) v = v !== null && typeof v === "object" ? (v as Json)[p] : undefined;
  return v;
}

function nest(path: readonly string[], value: unknown): Json {
  return path.reduceRight<Json>((inner, p) => ({ [p]: inner }), value as Json);
}

function deepMerge(a: Json, b: Json): Json {
  const out: Json = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const prev = out[k];
    out[k] =
      prev !== null && typeof prev === "object" && !Array.isArray(prev) && typeof v === "object"
        ? deepMerge(prev as Json, v as Json)
        : v;
  }
  return out;
}

export interface ForeignEntries {
  /** A JSON merge patch restoring every affected list to the desired one. */
  readonly patch: Json;
  /** What goes, as `spec.ports[9999/TCP]`, for the event and the log. */
  readonly removed: readonly string[];
}

/** Entries of the live object's keyed lists that the desired object does not have. */
export function foreignEntries(
  kind: string,
  desired: unknown,
  live: unknown,
): ForeignEntries | undefined {
  let patch: Json = {};
  const removed: string[] = [];
  for (const list of LISTS[kind] ?? []) {
    const want = (at(desired, list.path) as Json[] | undefined) ?? [];
    const have = (at(live, list.path) as Json[] | undefined) ?? [];
    const wanted = new Set(want.map(list.key));
    const extra = have.map(list.key).filter((k) => !wanted.has(k));
    if (extra.length === 0) continue;
    removed.push(...extra.map((k) => `${list.path.join(".")}[${k}]`));
    // null deletes the list when we want none (merge patch semantics).
    patch = deepMerge(patch, nest(list.path, want.length === 0 ? null : want));
  }
  return removed.length === 0 ? undefined : { patch, removed };
}
