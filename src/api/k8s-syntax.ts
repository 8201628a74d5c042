/**
 * Kubernetes' own syntax rules (k8s.io/apimachinery pkg/util/validation/validation.go), as
 * regular expressions both JavaScript and the API server's RE2 accept, so the CRD schema can
 * refuse at admission what Kubernetes would refuse in a rendered object.
 */

/** A label/taint key: optional DNS-subdomain prefix and "/", then a name of at most 63 characters. */
export const QUALIFIED_NAME_PATTERN =
  "^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$";

/** A label value: empty, or at most 63 of [A-Za-z0-9-_.] starting and ending alphanumeric. */
export const LABEL_VALUE_PATTERN = "^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$";

/** A Secret or ConfigMap data key (IsConfigMapKey). */
export const CONFIG_MAP_KEY_PATTERN = "^[-._a-zA-Z0-9]+$";

const SUFFIX: Record<string, number> = {
  "": 1,
  m: 1e-3,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
};

/**
 * The value of a quantity in the schema's form (digits, optional fraction, optional suffix), or
 * NaN when it is not one. Numbers this size fit a double with room: only comparisons use it.
 */
export function quantityValue(q: string): number {
  const m = /^([0-9]+(?:\.[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|k|M|G|T|P|m)?$/.exec(q);
  if (m === null) return Number.NaN;
  return Number(m[1]) * SUFFIX[m[2] ?? ""]!;
}
