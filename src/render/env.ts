/**
 * The environment the operator sets on the vLLM container. Kept apart from deployment.ts, which
 * imports names.ts and so the schema, because the schema imports MANAGED_ENV to refuse these
 * names in spec.pod.env: this module must not depend on the schema.
 */
import type { V1EnvVar } from "@kubernetes/client-node";

export const MODEL_CACHE_PATH = "/models";
/**
 * The pod runs as a UID (1000), which the official image has no passwd entry for. torch >= 2.11
 * calls getpass.getuser() while `import vllm` runs, which reads USER/LOGNAME before the
 * passwd database: without them every pod dies with KeyError (vllm#44548).
 */
export const RUN_AS_USER = "vllm";
/** The UID and GID every pod we render runs as (the vLLM image's files are world-readable). */
export const RUN_AS_UID = 1000;

/** The pod-level security context of every pod we render: non-root, our UID, RuntimeDefault. */
export function podSecurityContext() {
  return {
    runAsNonRoot: true,
    runAsUser: RUN_AS_UID,
    runAsGroup: RUN_AS_UID,
    fsGroup: RUN_AS_UID,
    seccompProfile: { type: "RuntimeDefault" },
  };
}
/** HOME and every cache under it live on an emptyDir: the root filesystem stays read-only. */
export const HOME_PATH = "/home/vllm";

/**
 * Where vLLM and the libraries under it write, each pointed at a writable volume. The root
 * filesystem is read-only, so a path missing here fails loudly instead of filling the image.
 */
export const WRITABLE_PATHS: readonly {
  readonly env?: string;
  readonly path: string;
  readonly what: string;
}[] = [
  {
    env: "HOME",
    path: HOME_PATH,
    what: "home; default parent of ~/.cache, ~/.triton, ~/.config/vllm, ~/.nv",
  },
  {
    env: "XDG_CACHE_HOME",
    path: `${HOME_PATH}/.cache`,
    what: "torch hub, FlashInfer JIT and outlines caches",
  },
  { env: "TRITON_CACHE_DIR", path: `${HOME_PATH}/.triton/cache`, what: "compiled Triton kernels" },
  {
    env: "TORCHINDUCTOR_CACHE_DIR",
    path: `${HOME_PATH}/.cache/torchinductor`,
    what: "torch.compile (inductor) output",
  },
  {
    env: "FLASHINFER_WORKSPACE_BASE",
    path: HOME_PATH,
    what: "FlashInfer's JIT workspace (~/.cache/flashinfer)",
  },
  {
    env: "VLLM_CACHE_ROOT",
    path: `${HOME_PATH}/.cache/vllm`,
    // The model cache is mounted read-only: compiled graphs are redone after a restart.
    what: "vLLM's torch.compile cache (the model cache is read-only)",
  },
  { path: "/tmp", what: "inductor temp files, vLLM's ZMQ IPC sockets, tempfile" },
  { path: "/dev/shm", what: "NCCL and multiprocessing shared memory" },
];

/**
 * Set per weight source (src/render/model-cache.ts): HF_HOME is the cache directory of the
 * checkpoint, read-only, and HF_HUB_OFFLINE keeps vLLM from asking the Hub for anything.
 */
export const SOURCE_ENV = ["HF_HOME", "HF_HUB_OFFLINE"] as const;

/** Variables set from Secrets the spec names (only when the spec names them). */
export const SECRET_ENV = { hfToken: "HF_TOKEN", apiKey: "VLLM_API_KEY" } as const;

/** Variables set on every vLLM container, in this order. */
export const FIXED_ENV: readonly V1EnvVar[] = [
  { name: "USER", value: RUN_AS_USER },
  { name: "LOGNAME", value: RUN_AS_USER },
  ...WRITABLE_PATHS.flatMap((w) => (w.env === undefined ? [] : [{ name: w.env, value: w.path }])),
  { name: "VLLM_NO_USAGE_STATS", value: "1" },
  { name: "DO_NOT_TRACK", value: "1" },
];

/**
 * Every variable the renderer may set. spec.pod.env must not repeat one: a second entry of the
 * same name would win (the kubelet keeps the last) and silently undo what the plan relies on.
 */
export const MANAGED_ENV: readonly string[] = [
  ...FIXED_ENV.map((e) => e.name),
  ...Object.values(SECRET_ENV),
  ...SOURCE_ENV,
];
