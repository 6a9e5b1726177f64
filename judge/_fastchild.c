/* judge._fastchild: a test child's fork and sandbox set-up, and the zygote's per-test bookkeeping, in C.

The same steps as judge/executor.py's Python path (Child, _child, enter_sandbox, _collect, _reap), without
Python code in between. Most of a test's cost is copy-on-write page faults: every page of the zygote that
a child writes to (reference counts included) is copied, and so is every page the zygote writes to while
a child shares it. Here the child's set-up writes its stack and little else, and the zygote's loop over a
submission's tests (serve) runs no Python code at all.

  spawn(...)   fork a child; the child sets up its descriptors, working folder, rlimits, user, death with
               the zygote and seccomp filter, waits for GO, then either returns None into Python (a
               Python submission: executor.python_child runs the harness) or writes READY and execs the
               compiled binary. The parent gets a handle (pid, in_w, out_r, err_r, ctl_r, go_w).
  start(...)   hand the child its input (what fits in the pipe) and GO.
  finish(...)  collect stdout, stderr and the control pipe under the output cap and the wall deadline,
               kill the child's process group, reap it (rusage), remove its working folder.
  serve(...)   the zygote's loop over test requests (judge/zygote.py's frames): spawn, start, fork the
               next test's child ahead, finish, reply; returns at any other request.
  fork(), fork_exit()   bare forks, for benchmarks/judge_overhead.py's floor.

The fork skips PyOS_BeforeFork/PyOS_AfterFork_Child on purpose: they reinitialise the interpreter's locks
and thread states, which matters only when other threads exist, run the Python-level at-fork hooks (none
of the zygote's modules registers one: threading and random are kept out of it, judge/zygote.py) and
forget signals caught but not yet handled (the zygote has a session of its own: no terminal signals). The
zygote is single-threaded (executor.fast_path_available checks before this module is used), so the child's
interpreter state is exactly the parent's: this thread holds the GIL, no other thread or lock owner
exists, and the main thread's id is unchanged. For the same reason the GIL is never released here. The C
library's own fork handlers (pthread_atfork) still run: the fork is glibc's fork().

Any failure in the child before READY exits with EXIT_SETUP after a line on stderr (the judge's SE).
*/
#define _GNU_SOURCE
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <endian.h>
#include <fcntl.h>
#include <dirent.h>
#include <grp.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CONTROL_FD 3
#define GO_FD 4
#define EXIT_SETUP 212
#define MAX_RLIMITS 16
#define MAX_PID_OFFSETS 64
#define PIPE_SIZE (1 << 20)
#define CHUNK (1 << 16)
#define CPU_WAIT_STEP_S 0.001  /* a deadline moves for waits longer than this (fewer /proc reads) */
#ifndef F_SETPIPE_SZ
#define F_SETPIPE_SZ 1031
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_close_range
#define SYS_close_range 436
#endif

/* ---- the child half ------------------------------------------------------------------------------ */

/* What the child needs, converted from Python objects before the fork (the child never touches them). */
typedef struct {
    int fds[5];                   /* to become 0 stdin, 1 stdout, 2 stderr, 3 control, 4 go */
    const char *workdir_root;     /* NULL: stay in the zygote's folder */
    pid_t zygote_pid;
    int n_rlimits;
    int rlimit_resource[MAX_RLIMITS];
    struct rlimit rlimit_value[MAX_RLIMITS];
    long uid;                     /* -1: keep the user (a judge not run as root) */
    const unsigned char *filter;  /* BPF program, 8 bytes an instruction */
    Py_ssize_t filter_len;
    int n_pid_offsets;
    Py_ssize_t pid_offsets[MAX_PID_OFFSETS];
    const char *exec_path;        /* NULL: a Python submission, the child returns into Python */
    char *const *exec_argv;
    char *const *exec_envp;
} ChildSpec;

static void write_str(int fd, const char *text) {
    ssize_t ignored = write(fd, text, strlen(text));
    (void)ignored;
}

/* Report a failed set-up step and exit; stderr is the test's stderr pipe once dup2 has run. */
static _Noreturn void setup_failed(const char *step) {
    char line[160];
    snprintf(line, sizeof line, "judge: sandbox setup failed: %s: %s\n", step, strerror(errno));
    write_str(2, line);
    _exit(EXIT_SETUP);
}

static void move_fds_into_place(const int *fds) {
    int moved[5];
    /* A source below 5 could be overwritten by an earlier dup2 onto it: lift those out of the way first. */
    for (int i = 0; i < 5; i++) {
        moved[i] = fds[i];
        if (fds[i] < 5 && fds[i] != i) {
            moved[i] = fcntl(fds[i], F_DUPFD, 5);
            if (moved[i] < 0)
                setup_failed("F_DUPFD");
        }
    }
    for (int i = 0; i < 5; i++) {
        if (moved[i] == i) {
            if (fcntl(i, F_SETFD, 0) != 0)  /* inheritable, as dup2 would leave it */
                setup_failed("F_SETFD");
        } else if (dup2(moved[i], i) < 0) {
            setup_failed("dup2");
        }
    }
    if (syscall(SYS_close_range, 5U, ~0U, 0U) != 0) {
        /* no close_range (Linux < 5.9): as CPython's closerange in the Python path, up to 65536, not the
           open-files limit, which containers set to 2^20 or more (that many close calls per test) */
        long top = sysconf(_SC_OPEN_MAX);
        for (long fd = 5; fd < (top > 0 && top < 65536 ? top : 65536); fd++)
            close((int)fd);
    }
}

/* root + "/" + pid into path (size bytes); -1 when it does not fit. By hand, not snprintf: in a child,
   printf's code and data are pages it would otherwise not touch. */
static int pid_path(char *path, size_t size, const char *root, pid_t pid) {
    char digits[16];
    int n = 0;
    unsigned long value = (unsigned long)pid;
    do {
        digits[n++] = (char)('0' + value % 10);
        value /= 10;
    } while (value);
    size_t root_len = strlen(root);
    if (root_len + 1 + (size_t)n + 1 > size)
        return -1;
    memcpy(path, root, root_len);
    path[root_len] = '/';
    for (int i = 0; i < n; i++)
        path[root_len + 1 + i] = digits[n - 1 - i];
    path[root_len + 1 + n] = 0;
    return 0;
}

static void enter_workdir(const ChildSpec *spec) {
    char path[4096];
    if (pid_path(path, sizeof path, spec->workdir_root, getpid()) != 0) {
        errno = ENAMETOOLONG;
        setup_failed("working folder");
    }
    if (mkdir(path, 0700) != 0)
        setup_failed("mkdir of the working folder");
    if (spec->uid >= 0 && chown(path, (uid_t)spec->uid, (gid_t)spec->uid) != 0)
        setup_failed("chown of the working folder");
    if (chdir(path) != 0)
        setup_failed("chdir to the working folder");
}

static void drop_privileges(const ChildSpec *spec) {
    if (spec->uid < 0)
        return;
    uid_t id = (uid_t)spec->uid;
    if (setgroups(0, NULL) != 0)
        setup_failed("setgroups");
    if (setresgid(id, id, id) != 0)
        setup_failed("setresgid");
    if (setresuid(id, id, id) != 0)
        setup_failed("setresuid");
}

static void load_filter(const ChildSpec *spec) {
    /* The filter's own copy, with this child's pid written where the template holds its placeholder
       ("signals only to itself"). On the stack: a page the child has already touched. */
    unsigned char *program = alloca((size_t)spec->filter_len);
    memcpy(program, spec->filter, (size_t)spec->filter_len);
    uint32_t pid = (uint32_t)getpid();
    for (int i = 0; i < spec->n_pid_offsets; i++)
        memcpy(program + spec->pid_offsets[i], &pid, sizeof pid);
    struct sock_fprog fprog = {(unsigned short)(spec->filter_len / 8), (struct sock_filter *)program};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        setup_failed("prctl(PR_SET_NO_NEW_PRIVS)");
    if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &fprog, 0, 0) != 0)
        setup_failed("prctl(PR_SET_SECCOMP)");
}

/* Everything executor.enter_sandbox does before READY, in its order; returns once GO has arrived. */
static void set_up_child(const ChildSpec *spec) {
    if (setsid() < 0)
        setup_failed("setsid");
    move_fds_into_place(spec->fds);
    if (spec->workdir_root != NULL)
        enter_workdir(spec);
    for (int i = 0; i < spec->n_rlimits; i++)
        if (setrlimit(spec->rlimit_resource[i], &spec->rlimit_value[i]) != 0)
            setup_failed("setrlimit");
    drop_privileges(spec);
    /* After the uid change, which clears it: be killed if the zygote dies. */
    if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) != 0)
        setup_failed("prctl(PR_SET_PDEATHSIG)");
    if (getppid() != spec->zygote_pid)
        _exit(1);  /* the zygote died before the setting took hold */
    load_filter(spec);
    char go = 0;
    ssize_t got;
    do {
        got = read(GO_FD, &go, 1);
    } while (got < 0 && errno == EINTR);
    if (got != 1 || go != 'G')
        _exit(EXIT_SETUP);  /* discarded: its submission stopped before this test */
    close(GO_FD);
}

static _Noreturn void exec_native(const ChildSpec *spec) {
    /* NativeProgram.prepare: the control pipe is not the binary's, and SIGPIPE is back to its default
       (Python ignores it, and an ignored signal stays ignored across exec). */
    if (fcntl(CONTROL_FD, F_SETFD, FD_CLOEXEC) != 0)
        setup_failed("F_SETFD on the control pipe");
    signal(SIGPIPE, SIG_DFL);
    if (write(CONTROL_FD, "R", 1) != 1)
        _exit(EXIT_SETUP);
    execve(spec->exec_path, spec->exec_argv, spec->exec_envp);
    char line[80];
    snprintf(line, sizeof line, "judge: execve failed (errno %d)\n", errno);
    write_str(2, line);
    _exit(127);
}

/* ---- the parent's half: spawn, start, finish ------------------------------------------------------- */

/* A forked child as the zygote sees it: its pid and the zygote's ends of its pipes (-1: none or closed). */
typedef struct {
    pid_t pid;
    int in_w, out_r, err_r, ctl_r, go_w;
} Handle;

static void close_all(const int *fds, int n) {
    for (int i = 0; i < n; i++)
        if (fds[i] >= 0)
            close(fds[i]);
}

/* Fork a child for `spec`. stdio: NULL (pipes made here) or the child's (stdin, stdout), closed here after
   the fork. Returns 1 in the parent (handle filled), 0 in a Python child once GO has come (a native child
   execs), -1 with errno set on failure (nothing left open but the given stdio). */
static int spawn_child(ChildSpec *spec, const int *stdio, Handle *handle) {
    /* parent ends: in_w, out_r, err_r, ctl_r, go_w; child ends: in_r, out_w, err_w, ctl_w, go_r */
    static const int child_reads[5] = {1, 0, 0, 0, 1};  /* stdin and go; it writes the other three */
    int parent_end[5] = {-1, -1, -1, -1, -1}, child_end[5] = {-1, -1, -1, -1, -1}, ends[2];
    int first_own = stdio == NULL ? 0 : 2;  /* given stdio: the child's stdin and stdout are those */
    if (stdio != NULL)
        child_end[0] = stdio[0], child_end[1] = stdio[1];
    for (int i = first_own; i < 5; i++) {
        if (pipe2(ends, O_CLOEXEC) != 0)
            goto fail;
        child_end[i] = ends[child_reads[i] ? 0 : 1];
        parent_end[i] = ends[child_reads[i] ? 1 : 0];
    }
    if (stdio == NULL)
        fcntl(parent_end[0], F_SETPIPE_SZ, PIPE_SIZE);  /* most inputs then fit in one write; best effort */
    memcpy(spec->fds, child_end, sizeof child_end);
    pid_t pid = fork();
    if (pid < 0)
        goto fail;
    if (pid == 0) {
        set_up_child(spec);
        if (spec->exec_path != NULL)
            exec_native(spec);
        return 0;
    }
    close_all(child_end, 5);
    *handle = (Handle){pid, parent_end[0], parent_end[1], parent_end[2], parent_end[3], parent_end[4]};
    return 1;
fail:;
    int saved = errno;
    close_all(parent_end, 5);
    close_all(child_end + first_own, 5 - first_own);
    errno = saved;
    return -1;
}

/* Write what fits of the input into the child's stdin (non-blocking), close it when everything fit, send
   GO. Returns the number of bytes written. */
static size_t start_child(Handle *handle, const char *data, size_t len) {
    size_t written = 0;
    if (handle->in_w >= 0) {
        fcntl(handle->in_w, F_SETFL, fcntl(handle->in_w, F_GETFL) | O_NONBLOCK);
        while (written < len) {
            ssize_t n = write(handle->in_w, data + written, len - written);
            if (n < 0) {
                if (errno == EINTR)
                    continue;
                break;  /* full (EAGAIN) or the child is gone (EPIPE): finish goes on */
            }
            written += (size_t)n;
        }
        if (written == len) {
            /* closed before the zygote forks the next child, which would hold it and delay the end of
               input a program waits for */
            close(handle->in_w);
            handle->in_w = -1;
        }
    }
    char go = 'G';
    ssize_t ignored = write(handle->go_w, &go, 1);  /* EPIPE: the child is gone; finish reports how */
    (void)ignored;
    close(handle->go_w);
    handle->go_w = -1;
    return written;
}

typedef struct {
    char *data;
    size_t len, cap;
} Buffer;

/* The zygote's buffers (outputs, requests) are mapped apart and left out of every fork (MADV_DONTFORK):
children never share their pages, so the zygote's writes into them copy nothing, and they are not in a
child's address space, counted against its memory limit. Reused from test to test; one grown past
KEEP_BYTES is unmapped after its test (release_large). */
static Buffer outputs[3];
#define KEEP_BYTES (4 * CHUNK)  /* the first size a buffer gets */

static void release_large(Buffer *b) {
    if (b->cap > KEEP_BYTES) {
        munmap(b->data, b->cap);
        b->data = NULL, b->len = b->cap = 0;
    }
}

static int buffer_reserve(Buffer *b, size_t room) {
    if (b->cap - b->len >= room)
        return 0;
    size_t cap = b->cap ? b->cap : KEEP_BYTES;
    while (cap - b->len < room)
        cap *= 2;
    void *data = b->data == NULL ? mmap(NULL, cap, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
                                 : mremap(b->data, b->cap, cap, MREMAP_MAYMOVE);
    if (data == MAP_FAILED)
        return -1;
    if (b->data == NULL && madvise(data, cap, MADV_DONTFORK) != 0) {
        munmap(data, cap);
        return -1;
    }
    b->data = data, b->cap = cap;
    return 0;
}

static double monotonic_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static char discard_buffer[CHUNK];  /* stderr beyond what is kept */

typedef struct {
    int timed_out, exceeded, status;
    double cpu_s, end;
    /* stdout, stderr, control: in outputs[0..2] until the next test */
} Result;

/* NAME in the folder DIRFD, and all it holds, removed through descriptors and never through a symbolic
   link: each folder is opened relative to its parent's descriptor with O_NOFOLLOW. The zygote runs as root
   and another sandboxed process may swap a folder for a link to /etc while this runs (renameat2): a walk by
   path (nftw, remove) would then delete files there. */
static void remove_tree_at(int dirfd, const char *name, int depth) {
    if (unlinkat(dirfd, name, 0) == 0 || errno == ENOENT || depth > 64)
        return;
    int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return;
    DIR *dir = fdopendir(fd);
    if (dir == NULL) {
        close(fd);
        return;
    }
    for (int pass = 0; pass < 2; pass++) {  /* a second pass for entries the first listing skipped */
        struct dirent *entry;
        while ((entry = readdir(dir)) != NULL)
            if (strcmp(entry->d_name, ".") != 0 && strcmp(entry->d_name, "..") != 0)
                remove_tree_at(fd, entry->d_name, depth + 1);
        rewinddir(dir);
    }
    closedir(dir);  /* closes fd */
    unlinkat(dirfd, name, AT_REMOVEDIR);
}

/* The child's working folder: empty as a rule; what a program left there goes too. Its parent (the
   zygote's scratch root) is root's and not writable by the sandbox user, so the path up to it is fixed. */
static void remove_workdir(const char *root, pid_t pid) {
    if (root == NULL)
        return;
    char path[4096];
    if (pid_path(path, sizeof path, root, pid) != 0)
        return;
    if (rmdir(path) != 0 && errno != ENOENT)
        remove_tree_at(AT_FDCWD, path, 0);
}

/* Seconds the most delayed thread of the child has spent runnable but waiting for a CPU (the second field
   of /proc/PID/task/TID/schedstat); 0 when the kernel does not say. */
static double cpu_wait_s(pid_t pid) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    DIR *tasks = opendir(path);
    if (tasks == NULL)
        return 0;
    unsigned long long most = 0;
    struct dirent *entry;
    while ((entry = readdir(tasks)) != NULL) {
        if (entry->d_name[0] == '.')
            continue;
        char stat_path[128], text[96];
        snprintf(stat_path, sizeof stat_path, "%s/%.32s/schedstat", path, entry->d_name);
        int fd = open(stat_path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            continue;
        ssize_t got = read(fd, text, sizeof text - 1);
        close(fd);
        unsigned long long on_cpu, waited;
        if (got > 0) {
            text[got] = '\0';
            if (sscanf(text, "%llu %llu", &on_cpu, &waited) == 2 && waited > most)
                most = waited;
        }
    }
    closedir(tasks);
    return (double)most * 1e-9;
}

/* Feed the rest of the input, collect stdout, stderr and the control pipe until they end and the child
   exits, or until the monotonic deadline or the output cap; then kill the child's process group, reap it
   and whatever it left in its group (the zygote is a subreaper; only that group: the next test's child is
   ours too) and remove its working folder. Every descriptor of the handle is closed. Returns 0, or an
   errno (the child is still killed and reaped).
   The deadline moves by the time the child waited, runnable, for a CPU that other work held (up to
   max_cpu_wait seconds): the wall-clock limit counts the time a program could run, not a busy machine's. */
static int finish_child(Handle *h, double deadline, double max_cpu_wait, const char *pending, size_t pending_len,
                        size_t output_limit, size_t stderr_keep, const char *workdir_root, Result *result) {
    int readers[3] = {h->out_r, h->err_r, h->ctl_r};
    double extended = 0;
    size_t fed = 0;
    int failed = 0, exited = 0, open_readers = 0;
    memset(result, 0, sizeof *result);
    for (int i = 0; i < 3; i++) {
        outputs[i].len = 0;
        open_readers += readers[i] >= 0;
    }
    int pidfd = (int)syscall(SYS_pidfd_open, h->pid, 0);
    if (pidfd < 0)
        failed = errno;
    if (h->in_w >= 0 && pending_len == 0) {
        close(h->in_w);
        h->in_w = -1;
    }
    while (!failed && (open_readers || !exited)) {
        double remaining = deadline - monotonic_now();
        if (remaining <= 0) {
            double waited = cpu_wait_s(h->pid);
            double allowed = waited < max_cpu_wait ? waited : max_cpu_wait;
            if (allowed - extended > CPU_WAIT_STEP_S) {
                deadline += allowed - extended;
                extended = allowed;
                continue;
            }
            result->timed_out = 1;
            break;
        }
        struct pollfd polled[5];
        int n = 0;
        for (int i = 0; i < 3; i++)
            if (readers[i] >= 0)
                polled[n++] = (struct pollfd){readers[i], POLLIN, 0};
        if (h->in_w >= 0)
            polled[n++] = (struct pollfd){h->in_w, POLLOUT, 0};
        if (!exited)
            polled[n++] = (struct pollfd){pidfd, POLLIN, 0};
        if (poll(polled, (nfds_t)n, (int)(remaining * 1000.0) + 1) < 0) {
            if (errno != EINTR)
                failed = errno;
            continue;
        }
        for (int k = 0; k < n; k++) {
            int fd = polled[k].fd;
            if (!polled[k].revents) {
                continue;
            } else if (fd == pidfd) {
                exited = 1;
            } else if (fd == h->in_w) {
                size_t left = pending_len - fed;
                ssize_t w = write(fd, pending + fed, left < CHUNK ? left : CHUNK);
                if (w > 0)
                    fed += (size_t)w;
                if ((w < 0 && errno != EAGAIN && errno != EINTR) || fed == pending_len) {
                    close(fd);  /* everything fed, or the child closed its end (EPIPE) */
                    h->in_w = -1;
                }
            } else {
                int i = fd == readers[0] ? 0 : fd == readers[1] ? 1 : 2;
                Buffer *b = &outputs[i];
                char *into = discard_buffer;
                if (i != 1 || b->len < stderr_keep) {
                    if (buffer_reserve(b, CHUNK) != 0) {
                        failed = ENOMEM;
                        break;
                    }
                    into = b->data + b->len;
                }
                ssize_t got = read(fd, into, CHUNK);
                if (got < 0 && (errno == EINTR || errno == EAGAIN))
                    continue;
                if (got <= 0) {  /* its end (a read error ends it the same way) */
                    close(fd);
                    readers[i] = -1;
                    open_readers--;
                } else if (into != discard_buffer) {
                    b->len += (size_t)got;
                    if (i == 1 && b->len > stderr_keep)
                        b->len = stderr_keep;
                    if (i != 1 && b->len > output_limit)
                        result->exceeded = 1;
                }
            }
        }
        if (result->exceeded)
            break;
    }
    close_all(readers, 3);
    int rest[3] = {h->in_w, h->go_w, pidfd};
    close_all(rest, 3);
    h->in_w = h->out_r = h->err_r = h->ctl_r = h->go_w = -1;
    kill(-h->pid, SIGKILL);
    kill(h->pid, SIGKILL);  /* a child past its deadline before its setsid is not yet its own group */
    struct rusage usage;
    memset(&usage, 0, sizeof usage);
    pid_t reaped;
    do {
        reaped = wait4(h->pid, &result->status, 0, &usage);
    } while (reaped < 0 && errno == EINTR);
    if (reaped < 0 && !failed)
        failed = errno;
    result->end = monotonic_now();
    while (waitpid(-h->pid, NULL, WNOHANG) > 0) {
    }
    remove_workdir(workdir_root, h->pid);
    result->cpu_s = (double)usage.ru_utime.tv_sec + (double)usage.ru_utime.tv_usec * 1e-6 +
                    (double)usage.ru_stime.tv_sec + (double)usage.ru_stime.tv_usec * 1e-6;
    return failed;
}

/* ---- the sandbox description, from Python objects ----------------------------------------------------- */

/* The Python objects a ChildSpec points into (filter), kept for as long as the spec is used. */
typedef struct {
    ChildSpec spec;
    Py_buffer filter;
    PyObject *workdir_root;
} ParsedSpec;

static int parse_rlimits(PyObject *rlimits, ChildSpec *spec) {
    if (!PyTuple_Check(rlimits) || PyTuple_GET_SIZE(rlimits) > MAX_RLIMITS) {
        PyErr_SetString(PyExc_ValueError, "rlimits: a tuple of at most 16 (resource, soft, hard)");
        return -1;
    }
    spec->n_rlimits = (int)PyTuple_GET_SIZE(rlimits);
    for (int i = 0; i < spec->n_rlimits; i++) {
        int resource;
        unsigned long long soft, hard;
        if (!PyArg_ParseTuple(PyTuple_GET_ITEM(rlimits, i), "iKK", &resource, &soft, &hard))
            return -1;
        spec->rlimit_resource[i] = resource;
        spec->rlimit_value[i].rlim_cur = (rlim_t)soft;
        spec->rlimit_value[i].rlim_max = (rlim_t)hard;
    }
    return 0;
}

static int parse_filter(Py_buffer *filter, PyObject *offsets, ChildSpec *spec) {
    if (filter->len == 0 || filter->len % 8 != 0 || filter->len / 8 > BPF_MAXINSNS) {
        PyErr_SetString(PyExc_ValueError, "filter: a BPF program (8 bytes an instruction)");
        return -1;
    }
    if (!PyTuple_Check(offsets) || PyTuple_GET_SIZE(offsets) > MAX_PID_OFFSETS) {
        PyErr_SetString(PyExc_ValueError, "pid_offsets: a tuple of at most 64 offsets");
        return -1;
    }
    spec->filter = filter->buf;
    spec->filter_len = filter->len;
    spec->n_pid_offsets = (int)PyTuple_GET_SIZE(offsets);
    for (int i = 0; i < spec->n_pid_offsets; i++) {
        Py_ssize_t offset = PyLong_AsSsize_t(PyTuple_GET_ITEM(offsets, i));
        if (offset == -1 && PyErr_Occurred())
            return -1;
        if (offset < 0 || offset + 4 > filter->len) {
            PyErr_SetString(PyExc_ValueError, "pid_offsets: an offset outside the filter");
            return -1;
        }
        spec->pid_offsets[i] = offset;
    }
    return 0;
}

/* (workdir_root, zygote_pid, rlimits, uid, filter, pid_offsets, native): see spawn's doc. */
static int parse_spec(PyObject *args, ParsedSpec *parsed) {
    PyObject *workdir_root, *rlimits, *offsets, *native;
    int zygote_pid;
    long uid;
    memset(parsed, 0, sizeof *parsed);
    if (!PyArg_ParseTuple(args, "OiOly*OO:spec", &workdir_root, &zygote_pid, &rlimits, &uid, &parsed->filter,
                          &offsets, &native))
        return -1;
    ChildSpec *spec = &parsed->spec;
    spec->zygote_pid = zygote_pid;
    spec->uid = uid;
    if (workdir_root != Py_None) {
        if (!PyBytes_Check(workdir_root)) {
            PyErr_SetString(PyExc_TypeError, "workdir_root: bytes or None");
            goto fail;
        }
        spec->workdir_root = PyBytes_AS_STRING(workdir_root);
    }
    if (parse_rlimits(rlimits, spec) < 0 || parse_filter(&parsed->filter, offsets, spec) < 0)
        goto fail;
    if (native != Py_None) {
        unsigned long long path, argv, envp;
        if (!PyArg_ParseTuple(native, "KKK", &path, &argv, &envp))
            goto fail;
        spec->exec_path = (const char *)(uintptr_t)path;
        spec->exec_argv = (char *const *)(uintptr_t)argv;
        spec->exec_envp = (char *const *)(uintptr_t)envp;
    }
    return 0;
fail:
    PyBuffer_Release(&parsed->filter);
    return -1;
}

#define SPEC_ARGS 7  /* parse_spec's arguments */

/* The arguments of a call that takes `n_head` of its own, then a sandbox description (parse_spec's):
   checks their number, fills `parsed` and returns the first n_head as a new tuple; NULL with an exception
   set on error (nothing left held). */
static PyObject *split_spec_args(PyObject *args, Py_ssize_t n_head, const char *name, ParsedSpec *parsed) {
    Py_ssize_t n = PyTuple_GET_SIZE(args);
    if (n != n_head + SPEC_ARGS) {
        PyErr_Format(PyExc_TypeError, "%s takes %zd arguments", name, n_head + SPEC_ARGS);
        return NULL;
    }
    PyObject *rest = PyTuple_GetSlice(args, n_head, n);
    if (rest == NULL)
        return NULL;
    int ok = parse_spec(rest, parsed);
    Py_DECREF(rest);
    if (ok < 0)
        return NULL;
    PyObject *head = PyTuple_GetSlice(args, 0, n_head);
    if (head == NULL)
        PyBuffer_Release(&parsed->filter);
    return head;
}

static PyObject *handle_tuple(const Handle *h) {
    return Py_BuildValue("(iiiiii)", (int)h->pid, h->in_w, h->out_r, h->err_r, h->ctl_r, h->go_w);
}

static int parse_handle(PyObject *tuple, Handle *h) {
    int pid;
    if (!PyArg_ParseTuple(tuple, "iiiiii:handle", &pid, &h->in_w, &h->out_r, &h->err_r, &h->ctl_r, &h->go_w))
        return -1;
    h->pid = pid;
    return 0;
}

/* ---- the module's functions ------------------------------------------------------------------------- */

PyDoc_STRVAR(spawn_doc,
"spawn(stdio, workdir_root, zygote_pid, rlimits, uid, filter, pid_offsets, native) -> tuple | None\n\n"
"Fork a test child that sets up its sandbox and waits for GO. stdio: None (pipes made here) or the\n"
"child's (stdin, stdout) descriptors, closed here after the fork. workdir_root: bytes or None (the child\n"
"works in workdir_root/PID). rlimits: ((resource, soft, hard), ...). uid: the sandbox user, or -1.\n"
"filter: the BPF program; pid_offsets: where the child writes its pid. native: None for Python, else\n"
"the (path, argv, envp) addresses for execve. Returns the handle (pid, in_w, out_r, err_r, ctl_r, go_w)\n"
"in the parent (-1 for the ends of given stdio), None in a Python child, never in a native one.");

static PyObject *fastchild_spawn(PyObject *self, PyObject *args) {
    ParsedSpec parsed;
    PyObject *head = split_spec_args(args, 1, "spawn", &parsed), *stdio;
    if (head == NULL)
        return NULL;
    int given[2];
    int ok = PyArg_ParseTuple(head, "O:spawn", &stdio) &&
             (stdio == Py_None || PyArg_ParseTuple(stdio, "ii:stdio", &given[0], &given[1]));
    Py_DECREF(head);
    if (!ok) {
        PyBuffer_Release(&parsed.filter);
        return NULL;
    }
    Handle handle;
    int forked = spawn_child(&parsed.spec, stdio == Py_None ? NULL : given, &handle);
    PyBuffer_Release(&parsed.filter);
    if (forked < 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    if (forked == 0)
        Py_RETURN_NONE;  /* a Python child: the harness runs from here (executor.FastChild) */
    return handle_tuple(&handle);
}

PyDoc_STRVAR(start_doc,
"start(handle, data) -> int\n\n"
"Write what fits of data into the child's stdin, close it when everything fit, send GO. Returns the\n"
"number of bytes written.");

static PyObject *fastchild_start(PyObject *self, PyObject *args) {
    PyObject *tuple;
    Py_buffer data;
    Handle h;
    if (!PyArg_ParseTuple(args, "Oy*:start", &tuple, &data))
        return NULL;
    if (parse_handle(tuple, &h) < 0) {
        PyBuffer_Release(&data);
        return NULL;
    }
    size_t written = start_child(&h, data.buf, (size_t)data.len);
    PyBuffer_Release(&data);
    return PyLong_FromSize_t(written);
}

PyDoc_STRVAR(finish_doc,
"finish(handle, deadline, max_cpu_wait, pending, output_limit, stderr_keep, workdir_root)\n"
"    -> (stdout, stderr, control, timed_out, exceeded, status, cpu_s, end)\n\n"
"Collect a started child's outputs under the output cap until the monotonic deadline (moved by the time\n"
"the child waited for a CPU, up to max_cpu_wait seconds), feeding it the\n"
"input start() could not write (pending; the handle's in_w is -1 when there is none), then kill its\n"
"process group, reap it and remove workdir_root/PID. Closes every descriptor of the handle.");

static PyObject *fastchild_finish(PyObject *self, PyObject *args) {
    PyObject *tuple, *root;
    double deadline, max_cpu_wait;
    Py_buffer pending;
    Py_ssize_t output_limit, stderr_keep;
    Handle h;
    if (!PyArg_ParseTuple(args, "Oddy*nnO:finish", &tuple, &deadline, &max_cpu_wait, &pending, &output_limit,
                          &stderr_keep, &root))
        return NULL;
    if (parse_handle(tuple, &h) < 0) {
        PyBuffer_Release(&pending);
        return NULL;
    }
    Result r;
    int failed = finish_child(&h, deadline, max_cpu_wait, pending.buf, (size_t)pending.len, (size_t)output_limit,
                              (size_t)stderr_keep, PyBytes_Check(root) ? PyBytes_AS_STRING(root) : NULL, &r);
    PyBuffer_Release(&pending);
    if (failed) {
        errno = failed;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    PyObject *result = Py_BuildValue(
        "(y#y#y#iiidd)", outputs[0].data ? outputs[0].data : "", (Py_ssize_t)outputs[0].len,
        outputs[1].data ? outputs[1].data : "", (Py_ssize_t)outputs[1].len, outputs[2].data ? outputs[2].data : "",
        (Py_ssize_t)outputs[2].len, r.timed_out, r.exceeded, r.status, r.cpu_s, r.end);
    for (int i = 0; i < 3; i++)
        release_large(&outputs[i]);
    return result;
}

/* ---- serve: the zygote's test loop --------------------------------------------------------------------- */

/* Frames as judge/zygote.py's: a 4-byte big-endian length, then the body. A test's request body is
   'T', '1' or '0' (more tests follow), then its input; the reply body is 'T', the fixed fields below
   (big-endian), then stdout, stderr and the payload (the control pipe after READY). */
#pragma pack(push, 1)
typedef struct {
    char tag;
    uint8_t ready, timed_out, exceeded;
    int32_t exit_code, signal;  /* -1: none */
    uint64_t wall_s, cpu_s;     /* IEEE doubles, big-endian */
    uint64_t stdout_len, stderr_len, payload_len;
} ReplyHeader;
#pragma pack(pop)

static int read_exactly(int fd, char *into, size_t size) {
    while (size) {
        ssize_t got = read(fd, into, size);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return got == 0 ? 0 : -1;
        into += got, size -= (size_t)got;
    }
    return 1;
}

static int write_all_iov(int fd, struct iovec *iov, int count) {
    while (count) {
        ssize_t n = writev(fd, iov, count);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        while (count && (size_t)n >= iov->iov_len)
            n -= (ssize_t)iov->iov_len, iov++, count--;
        if (count)
            iov->iov_base = (char *)iov->iov_base + n, iov->iov_len -= (size_t)n;
    }
    return 0;
}

static uint64_t be_double(double value) {
    uint64_t bits;
    memcpy(&bits, &value, sizeof bits);
    return htobe64(bits);
}

static int send_reply(int fd, const Result *r, double wall_s) {
    Buffer *out = &outputs[0], *err = &outputs[1], *ctl = &outputs[2];
    int ready = ctl->len >= 1 && ctl->data[0] == 'R';
    size_t payload = ready ? ctl->len - 1 : 0;
    ReplyHeader header = {
        'T', (uint8_t)ready, (uint8_t)r->timed_out, (uint8_t)r->exceeded,
        (int32_t)htobe32((uint32_t)(WIFEXITED(r->status) ? WEXITSTATUS(r->status) : -1)),
        (int32_t)htobe32((uint32_t)(WIFSIGNALED(r->status) ? WTERMSIG(r->status) : -1)),
        be_double(wall_s), be_double(r->cpu_s), htobe64(out->len), htobe64(err->len), htobe64(payload),
    };
    uint32_t length = htobe32((uint32_t)(sizeof header + out->len + err->len + payload));
    struct iovec iov[5] = {
        {&length, sizeof length}, {&header, sizeof header}, {out->data, out->len}, {err->data, err->len},
        {ctl->data ? ctl->data + ready : NULL, payload},
    };
    return write_all_iov(fd, iov, 5);
}

static Buffer request;  /* reused from test to test, as the outputs */

PyDoc_STRVAR(serve_doc,
"serve(requests_fd, replies_fd, spare, wall_limit_s, output_limit, stderr_keep, workdir_root, zygote_pid,\n"
"      rlimits, uid, filter, pid_offsets, native) -> (frame | None, spare) | None\n\n"
"Run test requests for the loaded submission (described as for spawn) until another frame arrives:\n"
"returns that frame's body (None at the end of requests) and the child kept ahead (a handle, or None).\n"
"spare: the child forked ahead, or None. Returns None in a Python test child, whose harness runs next.");

static PyObject *fastchild_serve(PyObject *self, PyObject *args) {
    int requests_fd, replies_fd;
    PyObject *spare_obj;
    double wall_limit;
    Py_ssize_t output_limit, stderr_keep;
    ParsedSpec parsed;
    PyObject *head = split_spec_args(args, 6, "serve", &parsed);
    if (head == NULL)
        return NULL;
    int ok = PyArg_ParseTuple(head, "iiOdnn:serve", &requests_fd, &replies_fd, &spare_obj, &wall_limit,
                              &output_limit, &stderr_keep);
    Py_DECREF(head);
    if (!ok) {
        PyBuffer_Release(&parsed.filter);
        return NULL;
    }
    Handle spare = {0, -1, -1, -1, -1, -1}, child;
    int have_spare = spare_obj != Py_None;
    if (have_spare && parse_handle(spare_obj, &spare) < 0) {
        PyBuffer_Release(&parsed.filter);
        return NULL;
    }
    const char *root = parsed.spec.workdir_root;
    int failed = 0, child_returned = 0;
    PyObject *frame = NULL;
    for (;;) {
        uint32_t length;
        int got = read_exactly(requests_fd, (char *)&length, sizeof length);
        if (got <= 0) {
            failed = got < 0 ? errno : 0;
            break;  /* the end of requests: frame stays NULL */
        }
        length = be32toh(length);
        request.len = 0;
        if (buffer_reserve(&request, length ? length : 1) != 0) {
            failed = ENOMEM;
            break;
        }
        got = read_exactly(requests_fd, request.data, length);
        if (got <= 0) {
            failed = got < 0 ? errno : EPIPE;
            break;
        }
        if (length < 2 || request.data[0] != 'T') {
            frame = PyBytes_FromStringAndSize(request.data, length);
            if (frame == NULL)
                failed = -1;
            break;
        }
        int more = request.data[1] == '1';
        if (have_spare) {
            child = spare, have_spare = 0;
        } else {
            int forked = spawn_child(&parsed.spec, NULL, &child);
            if (forked <= 0) {
                child_returned = forked == 0;
                failed = forked < 0 ? errno : 0;
                break;
            }
        }
        double started = monotonic_now();
        const char *input = request.data + 2;
        size_t input_len = length - 2;
        size_t written = start_child(&child, input, input_len);
        if (more) {  /* the next test's child sets itself up while this one runs */
            int forked = spawn_child(&parsed.spec, NULL, &spare);
            if (forked == 0) {
                child_returned = 1;
                break;
            }
            if (forked > 0)
                have_spare = 1;  /* a failed fork here: the next test forks again, and reports */
        }
        Result r;
        failed = finish_child(&child, started + wall_limit, wall_limit, input + written, input_len - written,
                              (size_t)output_limit, (size_t)stderr_keep, root, &r);
        if (failed)
            break;
        int sent = send_reply(replies_fd, &r, r.end - started);
        for (int i = 0; i < 3; i++)
            release_large(&outputs[i]);
        release_large(&request);
        if (sent != 0) {
            failed = errno;
            break;
        }
    }
    if (child_returned)
        Py_RETURN_NONE;  /* the filter's buffer stays held: the child exits, and its page stays shared */
    PyBuffer_Release(&parsed.filter);
    release_large(&request);
    if (failed) {
        Py_XDECREF(frame);
        if (have_spare) {  /* nobody will use it */
            kill(-spare.pid, SIGKILL);
            kill(spare.pid, SIGKILL);
            int fds[5] = {spare.in_w, spare.out_r, spare.err_r, spare.ctl_r, spare.go_w};
            close_all(fds, 5);
            waitpid(spare.pid, NULL, 0);
            remove_workdir(root, spare.pid);
        }
        if (failed > 0) {
            errno = failed;
            PyErr_SetFromErrno(PyExc_OSError);
        }
        return NULL;
    }
    PyObject *spare_tuple = have_spare ? handle_tuple(&spare) : (Py_INCREF(Py_None), Py_None);
    if (frame == NULL) {
        frame = Py_None;
        Py_INCREF(frame);
    }
    return Py_BuildValue("(NN)", frame, spare_tuple);
}

/* ---- the floor, for benchmarks/judge_overhead.py ------------------------------------------------------- */

PyDoc_STRVAR(fork_doc, "fork() -> int\n\nA bare fork(2), without CPython's at-fork machinery (benchmarks only).");

static PyObject *fastchild_fork(PyObject *self, PyObject *unused) {
    pid_t pid = fork();
    if (pid < 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    return PyLong_FromLong((long)pid);
}

PyDoc_STRVAR(fork_exit_doc, "fork_exit() -> None\n\nFork a child that _exit()s at once and reap it (benchmarks only).");

static PyObject *fastchild_fork_exit(PyObject *self, PyObject *unused) {
    pid_t pid = fork();
    if (pid < 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    if (pid == 0)
        _exit(0);
    while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
    }
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"spawn", fastchild_spawn, METH_VARARGS, spawn_doc},
    {"start", fastchild_start, METH_VARARGS, start_doc},
    {"finish", fastchild_finish, METH_VARARGS, finish_doc},
    {"serve", fastchild_serve, METH_VARARGS, serve_doc},
    {"fork", fastchild_fork, METH_NOARGS, fork_doc},
    {"fork_exit", fastchild_fork_exit, METH_NOARGS, fork_exit_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "judge._fastchild",
    "A test child's fork and sandbox set-up, and the zygote's per-test bookkeeping, in C.", -1, methods,
    NULL, NULL, NULL, NULL,
};

/* Raised whenever a function's arguments or results change: a stale build left by an editable install
   (the .so stays when this file changes) is then refused and the Python path used, not called wrongly. */
#define FASTCHILD_ABI 3

PyMODINIT_FUNC PyInit__fastchild(void) {
    PyObject *m = PyModule_Create(&module);
    if (m != NULL && PyModule_AddIntConstant(m, "ABI", FASTCHILD_ABI) != 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
