/**
 * The loader's program, run by the vLLM image's own Python (so no second image). It asks the Hub
 * for the file list and sizes first, so that a wrong token, repository or revision fails at
 * once with its reason; downloads with huggingface_hub's CLI (`hf download`, which resumes
 * partial files), retried with backoff; checks every expected file's size; and writes a
 * completion marker. Its verdict goes to the termination message as one JSON line, which the
 * operator reads from the pod status (src/controller/model-cache.ts).
 *
 * Exit codes: 0 done, 2 permanent (401, 403, 404, no space: the Job's podFailurePolicy fails the
 * Job at once), 1 transient (the Job retries the pod with its backoff).
 */
export const LOADER_EXIT = { ok: 0, transient: 1, permanent: 2 } as const;

export const LOADER_SCRIPT = String.raw`
import errno, json, os, shutil, subprocess, sys, time
from huggingface_hub import HfApi
from huggingface_hub.errors import GatedRepoError, HfHubHTTPError, RepositoryNotFoundError, RevisionNotFoundError
from huggingface_hub.utils import filter_repo_objects

TERM = "/dev/termination-log"
HOME = os.environ["HF_HOME"]
HUB = os.path.join(HOME, "hub")
MARKER = os.path.join(HOME, "msd-complete.json")
REPOS = os.environ["MSD_REPOS"].split()
REVISION = os.environ["MSD_REVISION"]
EXCLUDE = os.environ.get("MSD_EXCLUDE", "").split()
ATTEMPTS = int(os.environ.get("MSD_DOWNLOAD_ATTEMPTS", "4"))
TOKEN_HINT = os.environ.get("MSD_TOKEN_HINT", "")

def finish(code, **verdict):
    line = json.dumps(verdict)[:4000]
    try:
        with open(TERM, "w") as f:
            f.write(line)
    except OSError:
        pass
    print(line, flush=True)
    sys.exit(code)

def fail(reason, message, code=2):
    finish(code, phase="Failed", reason=reason, message=message)

def status_of(err):
    return getattr(getattr(err, "response", None), "status_code", None)

def expected(api, repo, revision):
    try:
        info = api.model_info(repo, revision=revision, files_metadata=True)
    except GatedRepoError as e:
        fail("Forbidden", "403 %s is gated and the token may not read it. %s" % (repo, TOKEN_HINT))
    except RevisionNotFoundError as e:
        fail("NotFound", "404 %s has no revision %s" % (repo, revision))
    except RepositoryNotFoundError as e:
        if status_of(e) == 401:
            fail("Unauthorized", "401 %s: not found, or private and the token cannot read it. %s" % (repo, TOKEN_HINT))
        fail("NotFound", "404 repository %s not found" % repo)
    except HfHubHTTPError as e:
        s = status_of(e)
        if s == 401:
            fail("Unauthorized", "401 %s: the token is refused. %s" % (repo, TOKEN_HINT))
        if s == 403:
            fail("Forbidden", "403 %s: the token may not read it. %s" % (repo, TOKEN_HINT))
        fail("HubError", "%s asking the Hub about %s: %s" % (s, repo, e), code=1)
    files = filter_repo_objects(info.siblings, ignore_patterns=EXCLUDE or None, key=lambda s: s.rfilename)
    return info.sha, {s.rfilename: s.size or 0 for s in files}

def present(snapshot, files):
    problems = []
    for name, size in files.items():
        path = os.path.join(snapshot, name)
        if not os.path.exists(path):
            problems.append("missing %s" % name)
        elif os.path.getsize(path) != size:
            problems.append("%s has %d bytes, the Hub says %d" % (name, os.path.getsize(path), size))
    return problems

def marker_ok():
    try:
        with open(MARKER) as f:
            m = json.load(f)
    except (OSError, ValueError):
        return None
    if m.get("repos") != REPOS or m.get("revision") != REVISION:
        return None
    for repo in m["files"]:
        if present(m["snapshots"][repo], m["files"][repo]):
            return None
    return m

def stored(path):
    n = 0
    for root, _, names in os.walk(path):
        for name in names:
            try:
                n += os.lstat(os.path.join(root, name)).st_size
            except OSError:
                pass
    return n

def download(repo, revision):
    cmd = ["hf", "download", repo, "--revision", revision, "--cache-dir", HUB, "--quiet"]
    for p in EXCLUDE:
        cmd += ["--exclude", p]
    for attempt in range(ATTEMPTS):
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode == 0:
            return r.stdout.strip().splitlines()[-1]
        if "No space left on device" in r.stderr:
            fail("NoSpace", "no space left on device in the model cache while downloading %s" % repo)
        delay = min(300, 15 * 2 ** attempt)
        print("hf download %s failed (attempt %d/%d), retrying in %ds: %s" % (repo, attempt + 1, ATTEMPTS, delay, r.stderr[-2000:]), flush=True)
        time.sleep(delay)
    fail("DownloadFailed", "hf download %s failed %d times: %s" % (repo, ATTEMPTS, r.stderr[-1500:]), code=1)

def main():
    done = marker_ok()
    if done is not None:
        finish(0, phase="Complete", bytes=done["bytes"], revision=REVISION, commit=done["commits"][REPOS[0]], reused=True)
    os.makedirs(HUB, exist_ok=True)
    api = HfApi()
    wanted = {}
    for i, repo in enumerate(REPOS):
        wanted[repo] = expected(api, repo, REVISION if i == 0 else "main")
    total = sum(sum(files.values()) for _, files in wanted.values())
    # What an earlier, interrupted attempt already fetched stays: hf download resumes it.
    need = total - stored(HUB)
    free = shutil.disk_usage(HOME).free
    if free < need:
        fail("NoSpace", "no space left: the model cache has %d GiB free and needs %d GiB more (checkpoint %d GiB); raise spec.model.cache.size" % (free >> 30, need >> 30, total >> 30))
    print(json.dumps({"phase": "Downloading", "expectedBytes": total}), flush=True)
    snapshots, commits, files = {}, {}, {}
    for i, repo in enumerate(REPOS):
        commit, expect = wanted[repo]
        snapshot = download(repo, REVISION if i == 0 else "main")
        problems = present(snapshot, expect)
        if problems:
            fail("VerifyFailed", "%s after download: %s" % (repo, "; ".join(problems[:10])), code=1)
        snapshots[repo], commits[repo], files[repo] = snapshot, commit, expect
    marker = {"repos": REPOS, "revision": REVISION, "commits": commits, "bytes": total, "snapshots": snapshots, "files": files, "completedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    tmp = MARKER + ".tmp"
    with open(tmp, "w") as f:
        json.dump(marker, f)
    os.replace(tmp, MARKER)
    finish(0, phase="Complete", bytes=total, revision=REVISION, commit=commits[REPOS[0]])

try:
    main()
except OSError as e:
    if e.errno == errno.ENOSPC:
        fail("NoSpace", "no space left on device in the model cache: %s" % e)
    raise
`;
