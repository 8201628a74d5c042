import { describe, test } from "node:test";
import assert from "node:assert/strict";
import type { V1Deployment, V1PodTemplateSpec } from "@kubernetes/client-node";
import { parseResource } from "../../src/api/validate.ts";
import { API_VERSION, KIND, type MistralSmallDeployment } from "../../src/api/schema.ts";
import { plan } from "../../src/planner/plan.ts";
import { renderDesired, type Desired, type Manifest } from "../../src/render/index.ts";
import { podTemplateHash, templateHashOf } from "../../src/render/deployment.ts";
import { TEMPLATE_HASH_ANNOTATION } from "../../src/render/names.ts";
import {
  ACCEPT_TEMPLATE_ANNOTATION,
  TEMPLATE_GENERATION_ANNOTATION,
  TEMPLATE_RECORD_ANNOTATION,
  TEMPLATE_SPEC_ANNOTATION,
  TEMPLATE_UPDATE_CONDITION,
  decideTemplate,
  decodeTemplate,
  encodeTemplate,
  pinTemplate,
  readRecord,
  templateOfferEvents,
  templateSpecDigest,
  withTemplateOffer,
  type LiveDeployment,
} from "../../src/controller/template-pin.ts";
import { LATER_GRACE_SECONDS, withLaterDefault } from "../support/later-release.ts";

type Raw = Record<string, unknown>;

function msdOf(
  spec: Raw = {},
  annotations?: Record<string, string>,
  generation = 1,
): MistralSmallDeployment {
  return parseResource({
    apiVersion: API_VERSION,
    kind: KIND,
    metadata: {
      name: "small",
      namespace: "ml",
      uid: "8d3b1c9e-0000-4000-8000-000000000001",
      generation,
      ...(annotations === undefined ? {} : { annotations }),
    },
    spec: { gpu: { type: "a100-80gb" }, maxModelLen: 65536, replicas: 2, ...spec },
  });
}

function desiredOf(msd: MistralSmallDeployment): Desired {
  const p = plan(msd.spec);
  assert.ok(p.feasible, p.reasons.join("; "));
  return renderDesired(msd, p);
}

function deploymentOf(objects: readonly Manifest[]): V1Deployment {
  const d = objects.find((o) => o.kind === "Deployment");
  assert.ok(d !== undefined, "a Deployment is rendered");
  return d as V1Deployment;
}

/** The live Deployment as the API server would hold it after applying `objects`. */
function liveAfter(objects: readonly Manifest[], replicas = 2): LiveDeployment {
  const d = structuredClone(deploymentOf(objects));
  return { metadata: d.metadata as LiveDeployment["metadata"], spec: d.spec, status: { replicas } };
}

describe("template record", () => {
  test("templateHashOf is the hash the renderer puts on the template", () => {
    const msd = msdOf();
    const p = plan(msd.spec);
    assert.ok(p.feasible);
    const t = deploymentOf(desiredOf(msd).objects).spec!.template;
    assert.equal(templateHashOf(t), podTemplateHash(msd, p));
    assert.equal(templateHashOf(t), t.metadata!.annotations![TEMPLATE_HASH_ANNOTATION]);
  });

  test("the applied Deployment carries a record that decodes to its exact template", () => {
    const msd = msdOf();
    const pinned = pinTemplate(desiredOf(msd), msd, undefined);
    const d = deploymentOf(pinned.objects);
    const a = d.metadata!.annotations!;
    assert.equal(a[TEMPLATE_SPEC_ANNOTATION], templateSpecDigest(msd.spec));
    assert.deepEqual(decodeTemplate(a[TEMPLATE_RECORD_ANNOTATION]!), d.spec!.template);
    // Annotations share 256 KiB per object: the record stays small.
    assert.ok(
      a[TEMPLATE_RECORD_ANNOTATION]!.length < 4096,
      `${a[TEMPLATE_RECORD_ANNOTATION]!.length}`,
    );
    const record = readRecord(a);
    assert.equal(record?.hash, pinned.templateHash);
  });

  test("a record edited by hand is refused: privileged, or not matching its hash", () => {
    const msd = msdOf();
    const a = deploymentOf(pinTemplate(desiredOf(msd), msd, undefined).objects).metadata!
      .annotations!;
    const t = decodeTemplate(a[TEMPLATE_RECORD_ANNOTATION]!);
    t.spec!.containers[0]!.securityContext!.privileged = true;
    const forged: V1PodTemplateSpec = structuredClone(t);
    forged.metadata!.annotations![TEMPLATE_HASH_ANNOTATION] = templateHashOf(forged);
    assert.throws(
      () =>
        readRecord({
          ...a,
          [TEMPLATE_HASH_ANNOTATION]: templateHashOf(forged),
          [TEMPLATE_RECORD_ANNOTATION]: encodeTemplate(forged),
        }),
      /hardening would change/,
    );
    assert.throws(
      () => readRecord({ ...a, [TEMPLATE_RECORD_ANNOTATION]: encodeTemplate(t) }),
      /hashes to/,
    );
    assert.throws(() => readRecord({ ...a, [TEMPLATE_RECORD_ANNOTATION]: "bm90IGd6aXA=" }), {
      name: "TemplateRecordError",
    });
  });

  test("fields outside the template change neither the template nor the spec digest", () => {
    const base = msdOf();
    const p = plan(base.spec);
    assert.ok(p.feasible);
    const variants: Raw[] = [
      { replicas: 5 },
      { autoscaling: { enabled: true, minReplicas: 1, maxReplicas: 4 } },
      { monitoring: { podMonitor: { enabled: true } } },
      { access: { networkPolicy: { enabled: false } } },
    ];
    for (const v of variants) {
      const m = msdOf(v);
      const mp = plan(m.spec);
      assert.ok(mp.feasible, JSON.stringify(v));
      assert.equal(podTemplateHash(m, mp), podTemplateHash(base, p), JSON.stringify(v));
      assert.equal(templateSpecDigest(m.spec), templateSpecDigest(base.spec), JSON.stringify(v));
    }
    assert.notEqual(
      templateSpecDigest(msdOf({ maxModelLen: 32768 }).spec),
      templateSpecDigest(base.spec),
    );
  });
});

describe("decideTemplate", () => {
  const msd = msdOf();
  const current = pinTemplate(desiredOf(msd), msd, undefined);
  const live = { annotations: liveAfter(current.objects).metadata.annotations!, replicas: 2 };
  const later = deploymentOf(withLaterDefault(desiredOf(msd)).objects).spec!.template;
  const digest = templateSpecDigest(msd.spec);

  test("no Deployment yet, or the same template: apply", () => {
    assert.deepEqual(
      decideTemplate({ desired: { template: later, specDigest: digest, generation: 1 } }),
      {
        action: "apply",
        reason: "no-deployment",
      },
    );
    const same = deploymentOf(current.objects).spec!.template;
    assert.equal(
      decideTemplate({ desired: { template: same, specDigest: digest, generation: 1 }, live })
        .action,
      "apply",
    );
  });

  test("only the operator changed: hold, naming the changed field", () => {
    const d = decideTemplate({
      desired: { template: later, specDigest: digest, generation: 1 },
      live,
    });
    assert.equal(d.action, "hold");
    assert.ok(d.action === "hold");
    assert.equal(d.record.hash, current.templateHash);
    assert.equal(d.offered, templateHashOf(later));
    assert.deepEqual(d.changes, [
      `spec.terminationGracePeriodSeconds: 120 → ${LATER_GRACE_SECONDS}`,
    ]);
  });

  test("opt-in: the offered hash accepted, a pod-relevant spec change, or no pods", () => {
    const offered = templateHashOf(later);
    const desired = { template: later, specDigest: digest, generation: 1 };
    assert.equal(decideTemplate({ desired, live, accepted: offered }).action, "apply");
    assert.equal(decideTemplate({ desired, live, accepted: "0123456789" }).action, "hold");
    const edited = { template: later, specDigest: "other", generation: 2 };
    assert.deepEqual(decideTemplate({ desired: edited, live }), {
      action: "apply",
      reason: "spec-changed",
    });
    assert.deepEqual(decideTemplate({ desired, live: { ...live, replicas: 0 } }), {
      action: "apply",
      reason: "no-pods",
    });
  });

  test("no consent: a new generation outside the template, or a new digest at the same generation", () => {
    // The autoscaler wrote spec.replicas: a new generation, the same digest.
    const scaled = { template: later, specDigest: digest, generation: 2 };
    assert.equal(decideTemplate({ desired: scaled, live }).action, "hold");
    // The new release parses the unchanged spec with a new schema default: a new digest.
    const reparsed = { template: later, specDigest: "other", generation: 1 };
    assert.equal(decideTemplate({ desired: reparsed, live }).action, "hold");
  });

  test("a Deployment without a record (an older release) or with a bad one: apply", () => {
    const desired = { template: later, specDigest: digest, generation: 1 };
    const noRecord = { annotations: { [TEMPLATE_HASH_ANNOTATION]: "aaaaaaaaaa" }, replicas: 2 };
    assert.deepEqual(decideTemplate({ desired, live: noRecord }), {
      action: "apply",
      reason: "no-record",
    });
    const bad = {
      annotations: { ...live.annotations, [TEMPLATE_RECORD_ANNOTATION]: "x" },
      replicas: 2,
    };
    assert.equal(decideTemplate({ desired, live: bad }).action, "apply");
  });
});

describe("pinTemplate", () => {
  const msd = msdOf();
  const live = liveAfter(pinTemplate(desiredOf(msd), msd, undefined).objects);

  test("held: the live template and record, the rest of the Deployment from the new render", () => {
    const scaled = msdOf({ replicas: 4 });
    const out = pinTemplate(withLaterDefault(desiredOf(scaled)), scaled, live);
    const d = deploymentOf(out.objects);
    const liveSpec = live.spec as V1Deployment["spec"];
    assert.deepEqual(d.spec!.template, liveSpec!.template);
    assert.equal(d.spec!.replicas, 4, "replicas still reconcile");
    const held = { ...live.metadata.annotations };
    // The record stays, its spec digest and generation follow the resource.
    assert.deepEqual(d.metadata!.annotations, {
      ...held,
      [TEMPLATE_SPEC_ANNOTATION]: templateSpecDigest(scaled.spec),
      [TEMPLATE_GENERATION_ANNOTATION]: "1",
    });
    assert.equal(out.templateHash, live.metadata.annotations![TEMPLATE_HASH_ANNOTATION]);
    assert.ok(out.offer !== undefined);
    assert.equal(out.offer.current, out.templateHash);
    assert.notEqual(out.offer.offered, out.templateHash);
  });

  test("accepted: the new template and a new record", () => {
    const offered = templateHashOf(
      deploymentOf(withLaterDefault(desiredOf(msd)).objects).spec!.template,
    );
    const accepting = msdOf({}, { [ACCEPT_TEMPLATE_ANNOTATION]: offered });
    const out = pinTemplate(withLaterDefault(desiredOf(accepting)), accepting, live);
    const d = deploymentOf(out.objects);
    assert.equal(out.offer, undefined);
    assert.equal(out.templateHash, offered);
    assert.equal(d.spec!.template.spec!.terminationGracePeriodSeconds, LATER_GRACE_SECONDS);
    assert.equal(readRecord(d.metadata!.annotations)?.hash, offered);
  });
});

describe("status and events", () => {
  const msd = msdOf();
  const live = liveAfter(pinTemplate(desiredOf(msd), msd, undefined).objects);
  const offer = pinTemplate(withLaterDefault(desiredOf(msd)), msd, live).offer!;
  const base = { observedGeneration: 3, conditions: [] };

  test("the condition names both hashes, the change and the opt-in command", () => {
    const s = withTemplateOffer(base, offer, undefined, "2026-01-01T00:00:00Z");
    const c = s.conditions?.find((x) => x.type === TEMPLATE_UPDATE_CONDITION);
    assert.equal(c?.status, "True");
    assert.equal(c?.reason, "OperatorDefaultsChanged");
    assert.equal(c?.observedGeneration, 3);
    assert.ok(c?.message.includes(`${offer.current} → ${offer.offered}`), c?.message);
    assert.ok(c?.message.includes("spec.terminationGracePeriodSeconds"), c?.message);
    assert.ok(
      c?.message.includes(
        `kubectl annotate mistralsmalldeployment small --overwrite ${ACCEPT_TEMPLATE_ANNOTATION}=${offer.offered}`,
      ),
      c?.message,
    );
    const later = withTemplateOffer(base, offer, s, "2026-01-02T00:00:00Z");
    assert.equal(
      later.conditions?.find((x) => x.type === TEMPLATE_UPDATE_CONDITION)?.lastTransitionTime,
      "2026-01-01T00:00:00Z",
    );
    assert.deepEqual(withTemplateOffer(s, undefined, s, "2026-01-02T00:00:00Z").conditions, []);
  });

  test("one event when the offer appears, none while it stands", () => {
    const s = withTemplateOffer(base, offer, undefined, "2026-01-01T00:00:00Z");
    const first = templateOfferEvents([], s.conditions);
    assert.equal(first.length, 1);
    assert.equal(first[0]?.reason, TEMPLATE_UPDATE_CONDITION);
    assert.deepEqual(templateOfferEvents(s.conditions, s.conditions), []);
    assert.deepEqual(templateOfferEvents(s.conditions, []), []);
  });
});
