# SPDX-License-Identifier: GPL-2.0-or-later
"""Tiers for the benchmarks: a throttled "HDD" and a tmpfs "NVM".

The HDD is the machine's own disk, throttled for one blkio (cgroup v1)
cgroup: every process of a measured configuration joins it (the FUSE daemon
too: it does the reads, not the process it serves), so only their I/O is
limited and counted.  The NVM is a tmpfs.  Shared by coldstart-bench and
import-bench; everything made here is undone by Cleanup, also on a signal.
"""

import datetime
import os
import shutil
import signal
import stat
import statistics
import subprocess
import time

BLKIO = "/sys/fs/cgroup/blkio"
MiB = 1 << 20
HDD_BPS = 150 * MiB          # 157286400 B/s: a fast 7200 rpm disk, sequential
HDD_IOPS = 150               # its random I/O rate


class Interrupted(Exception):
    pass


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def out(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True).stdout.strip()
    except OSError:
        return ""


def on_signal(signum, frame):
    raise Interrupted(f"signal {signum}")


def catch_signals():
    # Also SIGINT: a shell may start us with it ignored, and we must clean up.
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)


class Cleanup:
    """Undo actions, run last-registered first, each at most once."""

    def __init__(self):
        self.actions = []

    def push(self, what, fn):
        self.actions.append((what, fn))

    def run(self):
        while self.actions:
            what, fn = self.actions.pop()
            try:
                fn()
            except Exception as e:      # keep undoing the rest
                log(f"cleanup: {what}: {e}")


def drop_caches():
    subprocess.run(["sync"], check=True)
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


WARM_DIR = "/dev/shm/nlbench-warm"


def warm_daemon_host_files(nl):
    """A tiered mount of an empty layer, all on a tmpfs, outside any throttled
    cgroup: it reads what the daemon itself needs from the host's disk at a
    mount (its libraries, and the configuration libpmemobj reads through
    libndctl and libkmod to check the pool for bad blocks), as a host that
    runs containers has it cached. No image file is touched."""
    mnt = os.path.join(WARM_DIR, "mnt")
    for d in ("layer", "nvm", "mnt"):
        os.makedirs(os.path.join(WARM_DIR, d), exist_ok=True)
    r = subprocess.run([nl, "-o", f"lowerdir={WARM_DIR}/layer,nvm={WARM_DIR}/nvm,host_idle=0", mnt],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if r.returncode == 0:
        os.listdir(mnt)
        subprocess.run(["fusermount3", "-u", mnt], stderr=subprocess.DEVNULL)
        # the tier service closes its pool once idle after the unmount
        # (host_idle=0): let it go first
        for _ in range(100):
            if not any(f"{WARM_DIR}/" in _cmdline(p) for p in _pids()):
                break
            time.sleep(0.05)


def _pids():
    return [p for p in os.listdir("/proc") if p.isdigit()]


def _cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def is_mounted(path):
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == path for line in f)


def disk_of(path):
    """(major:minor, name) of the whole disk holding path: throttle rules take disks."""
    dev = os.stat(path).st_dev
    sys_dev = f"/sys/dev/block/{os.major(dev)}:{os.minor(dev)}"
    if not os.path.exists(sys_dev):
        # A file system without its own block device number (btrfs, device
        # mapper names, overlay): ask findmnt for its source.
        src = out(["findmnt", "-no", "SOURCE", "-T", path]).split("[")[0]
        try:
            st = os.stat(os.path.realpath(src))
        except OSError:
            st = None
        if not st or not stat.S_ISBLK(st.st_mode):
            raise RuntimeError(f"{path} is not on a block device (source {src or '?'})")
        sys_dev = f"/sys/dev/block/{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}"
    real = os.path.realpath(sys_dev)
    if os.path.exists(os.path.join(real, "partition")):
        real = os.path.dirname(real)
    with open(os.path.join(real, "dev")) as f:
        return f.read().strip(), os.path.basename(real)


class ThrottledHdd:
    """A blkio cgroup that throttles the disk holding `path` for its members."""

    def __init__(self, path, tag, cleanup, write=False, bps=HDD_BPS, iops=HDD_IOPS,
                 write_iops=None):
        self.dev, self.disk = disk_of(path)
        self.bps, self.iops, self.write = bps, iops, write
        self.write_iops = write_iops
        if not os.path.isdir(BLKIO):
            raise RuntimeError(f"{BLKIO} is missing: the blkio controller (cgroup v1) is needed")
        self.cg = os.path.join(BLKIO, f"nl-{tag}-{os.getpid()}")
        os.mkdir(self.cg)
        cleanup.push(f"remove {self.cg}", self.remove)
        self.set("blkio.throttle.read_bps_device", f"{self.dev} {bps}")
        self.set("blkio.throttle.read_iops_device", f"{self.dev} {iops}")
        if write:
            self.set("blkio.throttle.write_bps_device", f"{self.dev} {bps}")
            if write_iops:
                self.set("blkio.throttle.write_iops_device", f"{self.dev} {write_iops}")

    def describe(self):
        s = (f"{self.disk} ({self.dev}) throttled to {self.bps / MiB:.0f} MiB/s and "
             f"{self.iops} IOPS for reads")
        if self.write:
            s += (f", {self.bps / MiB:.0f} MiB/s and " +
                  (f"{self.write_iops} IOPS" if self.write_iops else "no IOPS limit") +
                  " for writes")
        return s + ", in the blkio cgroup of the measured processes"

    def set(self, name, value):
        with open(os.path.join(self.cg, name), "w") as f:
            f.write(value + "\n")

    def join(self):
        """preexec_fn for Popen: the child joins the cgroup before it execs."""
        procs = os.path.join(self.cg, "cgroup.procs")

        def enter():
            with open(procs, "w") as f:
                f.write(f"{os.getpid()}\n")
        return enter

    def enter(self):
        """Moves this process itself into the cgroup (until leave())."""
        with open(os.path.join(self.cg, "cgroup.procs"), "w") as f:
            f.write(f"{os.getpid()}\n")

    def leave(self):
        with open(os.path.join(BLKIO, "cgroup.procs"), "w") as f:
            f.write(f"{os.getpid()}\n")

    def stats(self):
        """I/Os and bytes of the members on the disk so far (blkio.reset_stats
        does not reset the throttle counters: callers take differences)."""
        res = {}
        for fname, key in (("blkio.throttle.io_serviced", "ios"),
                           ("blkio.throttle.io_service_bytes", "bytes")):
            with open(os.path.join(self.cg, fname)) as f:
                for line in f:
                    parts = line.split()
                    if len(parts) == 3 and parts[0] == self.dev and parts[1] in ("Read", "Write"):
                        res[f"{parts[1].lower()}_{key}"] = int(parts[2])
        return res

    def remove(self):
        # Whatever is left (nothing, normally) goes back to the root group.
        with open(os.path.join(self.cg, "cgroup.procs")) as f:
            pids = f.read().split()
        for pid in pids:
            try:
                with open(os.path.join(BLKIO, "cgroup.procs"), "w") as f:
                    f.write(pid + "\n")
            except OSError:
                pass
        for _ in range(50):
            try:
                os.rmdir(self.cg)
                return
            except FileNotFoundError:
                return
            except OSError:
                time.sleep(0.1)
        os.rmdir(self.cg)


def mount_tmpfs(path, size, cleanup):
    os.makedirs(path, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "nl-nvm", path],
                   check=True)

    def undo():
        subprocess.run(["umount", path], check=True)
        os.rmdir(path)
    cleanup.push(f"umount {path}", undo)


def du_bytes(path):
    """Allocated bytes (blocks), as a tier would have to hold them."""
    r = out(["du", "-s", "--block-size=1", path])
    return int(r.split()[0]) if r else 0


def du_apparent(path):
    r = out(["du", "-s", "-b", path])
    return int(r.split()[0]) if r else 0


def load():
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def machine(path):
    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_kb = int(f.readline().split()[1])
    src, fstype = (out(["findmnt", "-no", "SOURCE,FSTYPE", "-T", path]).split() + ["?", "?"])[:2]
    return (f"Linux {os.uname().release}, {cpu}, {os.cpu_count()} cores (shared with other "
            f"work), {mem_kb / 1024 / 1024:.1f} GiB RAM; HDD directory on {fstype} on {src}")


def now():
    return datetime.datetime.now().strftime('%Y-%m-%d %H:%M %Z').strip()


def commit(src):
    return out(["git", "-C", src, "rev-parse", "--short", "HEAD"]) or "?"


def med(xs):
    return statistics.median(xs) if xs else None


def fmt(v, unit=""):
    if v is None:
        return "-"
    s = f"{v:.0f}" if abs(v) >= 100 else f"{v:.3g}"
    return s + unit


def ratio(a, b):
    return f"{a / b:.2f}x" if a is not None and b else "-"


def write_section(path, name, section):
    """Replaces only this benchmark's section, so benchmarks can share the file."""
    begin, end = f"<!-- {name} begin -->", f"<!-- {name} end -->"
    text = ""
    if os.path.exists(path):
        with open(path) as f:
            text = f.read()
    block = f"{begin}\n{section}{end}\n"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        text = head + block + rest.split(end, 1)[1].lstrip("\n")
    else:
        if not text:
            text = ("<!-- SPDX-License-Identifier: GPL-2.0-or-later -->\n"
                    "# Benchmark results\n\nWritten by test/bench/run-all; "
                    "newest run of each benchmark.\n\n")
        text = text.rstrip("\n") + "\n\n" + block
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


def rmtree(path):
    shutil.rmtree(path, ignore_errors=True)


class LoopHdd:
    """An ext4 file system on a loop device over a file on the machine's
    disk, throttled for everyone (rules on the root blkio cgroup).

    For write benchmarks: cgroup v1 charges page-cache writeback and journal
    commits to the kernel threads doing them, not to the cgroup that dirtied
    the pages, so a throttled cgroup would not slow those writes.  Rules on
    the root group of a device only we use cover every write, whoever
    submits it.  Same interface as ThrottledHdd."""

    def __init__(self, mnt, size, cleanup, bps=HDD_BPS, iops=HDD_IOPS):
        self.bps, self.iops, self.write, self.write_iops = bps, iops, True, None
        self.image = mnt.rstrip("/") + ".img"
        self.disk = disk_of(os.path.dirname(self.image))[1]
        with open(self.image, "wb") as f:
            f.truncate(size)
        cleanup.push(f"remove {self.image}", lambda: os.unlink(self.image))
        self.loop = subprocess.run(["losetup", "-f", "--show", self.image], check=True,
                                   capture_output=True, text=True).stdout.strip()
        cleanup.push(f"detach {self.loop}",
                     lambda: subprocess.run(["losetup", "-d", self.loop], check=True))
        with open(f"/sys/block/{os.path.basename(self.loop)}/dev") as f:
            self.dev = f.read().strip()
        subprocess.run(["mkfs.ext4", "-q", "-E", "lazy_itable_init=0,lazy_journal_init=0",
                        self.loop], check=True)
        os.makedirs(mnt, exist_ok=True)
        subprocess.run(["mount", self.loop, mnt], check=True)

        def undo_mount():
            subprocess.run(["umount", mnt], check=True)
            os.rmdir(mnt)
        cleanup.push(f"umount {mnt}", undo_mount)
        cleanup.push("remove the throttle rules", self.unthrottle)
        for name, v in (("read_bps_device", bps), ("read_iops_device", iops),
                        ("write_bps_device", bps)):
            self.set(name, v)

    def set(self, name, value):
        with open(os.path.join(BLKIO, f"blkio.throttle.{name}"), "w") as f:
            f.write(f"{self.dev} {value}\n")

    def unthrottle(self):
        for name in ("read_bps_device", "read_iops_device", "write_bps_device"):
            self.set(name, 0)

    def describe(self):
        return (f"an ext4 file system on {self.loop} (a file on {self.disk}), the loop device "
                f"throttled to {self.bps / MiB:.0f} MiB/s and {self.iops} IOPS for reads and "
                f"{self.bps / MiB:.0f} MiB/s for writes for every process and kernel thread "
                f"(rules on the root blkio group; page-cache writeback and journal commits "
                f"included)")

    def join(self):
        return None

    def stats(self):
        res = {}
        for fname, key in (("blkio.throttle.io_serviced", "ios"),
                           ("blkio.throttle.io_service_bytes", "bytes")):
            with open(os.path.join(BLKIO, fname)) as f:
                for line in f:
                    parts = line.split()
                    if len(parts) == 3 and parts[0] == self.dev and parts[1] in ("Read", "Write"):
                        res[f"{parts[1].lower()}_{key}"] = int(parts[2])
        return res
