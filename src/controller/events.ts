/** Kubernetes Events (events.k8s.io/v1) for the operator's decisions and failures. */
import { randomBytes } from "node:crypto";
import type { Logger } from "pino";
import { API_VERSION, KIND } from "../api/schema.ts";
import { RESOURCES, type KubeClient, type KubeObject } from "../kube/client.ts";
import { OPERATOR_NAME } from "../render/names.ts";

export interface EventInput {
  type: "Normal" | "Warning";
  reason: string;
  action: string;
  note: string;
}

export interface EventRecorder {
  emit(regarding: KubeObject, e: EventInput): void;
  /** Resolves when every emitted event has been written (or failed and been logged). */
  flush(): Promise<void>;
}

/** MicroTime: RFC 3339 with microseconds, as events.k8s.io/v1 requires. */
export function microTime(d: Date): string {
  return d.toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");
}

export class ApiEventRecorder implements EventRecorder {
  private pending = new Set<Promise<void>>();
  constructor(
    private readonly client: KubeClient,
    private readonly instance: string,
    private readonly log: Logger,
  ) {}

  emit(regarding: KubeObject, e: EventInput): void {
    const ns = regarding.metadata.namespace ?? "default";
    const body = {
      apiVersion: "events.k8s.io/v1",
      kind: "Event",
      metadata: {
        name: `${regarding.metadata.name}.${randomBytes(8).toString("hex")}`,
        namespace: ns,
      },
      eventTime: microTime(new Date()),
      reportingController: `serving.mistralsmall.dev/${OPERATOR_NAME}`,
      reportingInstance: this.instance,
      action: e.action.slice(0, 128),
      reason: e.reason.slice(0, 128),
      note: e.note.slice(0, 1024),
      type: e.type,
      regarding: {
        apiVersion: API_VERSION,
        kind: KIND,
        name: regarding.metadata.name,
        namespace: ns,
        uid: regarding.metadata.uid,
      },
    };
    // Events are best effort: a failed event is logged, never allowed to fail a reconcile.
    const p = this.client
      .create(RESOURCES.event, body, ns)
      .then(() => undefined)
      .catch((err: unknown) => this.log.warn({ err, reason: e.reason }, "could not record event"))
      .finally(() => this.pending.delete(p));
    this.pending.add(p);
  }

  async flush(): Promise<void> {
    await Promise.all([...this.pending]);
  }
}
