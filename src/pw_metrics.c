/*
 * pw_metrics.c: the figures behind the pywsgi-status page, in shared memory.
 *
 * Here: the shared segment (made in post_config), the slot each child claims
 * in child_init, the per-request updates, the LogFormat notes, the
 * PyWSGISlowRequest warning, and the snapshot pw_status.c renders.  Not
 * here: any rendering (pw_status.c).
 *
 * Locking: no locks at all, and no GIL except in pw_metrics_python_sample(),
 * which is called with it held.  Every shared figure is a 64-bit word
 * changed with a relaxed atomic add or store (a counter needs no ordering
 * with anything else); a child takes its slot with one compare-and-swap on
 * the slot's (state, pid) word; readers only load.
 *
 * Why plain APR shared memory, anonymous, made anew for each generation
 * (post_config, in the parent, in pconf) and not mod_slotmem_shm:
 * - the children inherit the mapping across fork(): no name, file or
 *   permission to manage, and no extra LoadModule to forget;
 * - on a graceful restart the old generation's children finish their
 *   requests writing into the old segment (still mapped in them) while the
 *   new generation starts on a fresh one sized for the new configuration
 *   (the apps and ServerLimit may have changed).  No slot can be shared by
 *   two generations and no layout has to match across configurations.
 *   The price: counters start again from zero when Apache re-reads its
 *   configuration, which Prometheus handles as the counter reset it is
 *   (rate() copes), and pywsgi_metrics_start_time_seconds tells when.
 * slotmem_shm would carry counters over a restart, but only while the
 * layout is unchanged, needs its own module loaded, and its slots would
 * still have to be matched to children by hand.
 *
 * Slots: one per possible child (the MPM's hard limit, ServerLimit), plus
 * one overflow slot shared by any child that finds none free.  A child
 * claims a never-used slot, one whose child exited (marked at its pchild
 * cleanup), or one whose child died without a word (kill(pid, 0) says
 * ESRCH).  A slot's per-app counters are never reset: a new child adds to
 * what its predecessors counted there, so the totals survive every exit,
 * clean or not.  Only the per-pid figures (requests served, GC runs, GIL
 * wait, RSS) start again with the new pid.  Not the scoreboard's slot
 * number: the parent writes a child's pid there only after fork()
 * returns, so child_init cannot count on finding itself
 * (ap_find_child_by_pid), and MPMs differ in when they reuse a slot.
 *
 * Saturation: one shared count of the requests in apps (all children) is
 * moved at each request's begin and end; when it reaches MaxRequestWorkers
 * the time is stamped, when it leaves it the period is added up; the first
 * request to end in each second stores the running total in a 64-entry
 * ring, so the page can look a minute back without a thread of its own.
 * A child that died without a word (a crash inside an app, SIGKILL) gives
 * back what it had in flight once a child starts or the page is read
 * (reap_dead): its replacement may take another slot, or never come.  The
 * queue wait before each request's app (pw_metrics_queue_wait) goes into
 * a per-app histogram with the latency buckets.
 *
 * Apps: an app is named by its target as configured, plus ":callable" when
 * a callable= option picks another than `application` (t/apps/errors.py
 * serves ten).  The apps of every PyWSGIScriptAlias line (read from the
 * config tree in post_config, as mod_info reads it, so each shows, with
 * zeros, from the start) get fixed indexes; spare entries (8, and 4 per
 * virtual host, at most 64) take apps this file did not see there (claimed
 * at first use, by name, with a CAS), and "(other)" the rest.  Each child
 * remembers the index of each pw_app_t it met in a small lock-free table, so
 * the hot path finds it with one pointer compare.  A file served by handler is
 * counted under its path, one entry whatever host serves it; the entry also
 * records (a CAS per host, the first time a child meets the pair) the virtual
 * hosts that served it, as server_rec pointers -- the same in every child of a
 * generation, which all fork from the parent that read the configuration -- so
 * a tenant's status page (PyWSGIStatus Host) finds its files.  The table is
 * keyed by (app, host) for them.
 */
#include "pw_metrics.h"
#include "ap_mpm.h"
#include "http_core.h"
#include "apr_hash.h"
#include "apr_shm.h"
#include "util_cfgtree.h"
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sched.h>
#include <signal.h>
#include <unistd.h>

APLOG_USE_MODULE(pywsgi);

static int metrics_post_config(apr_pool_t *pconf, apr_pool_t *plog,
                               apr_pool_t *ptemp, server_rec *s);
static apr_status_t metrics_forget(void *data);
static void collect_apps(apr_pool_t *p, const ap_directive_t *d,
                         apr_array_header_t *names, apr_hash_t *index);
static const char *app_label(char *buf, apr_size_t size, const char *target,
                             const char *callable, int factory);
static void metrics_child_init(apr_pool_t *pchild, server_rec *s);
static apr_status_t metrics_child_exit(void *data);
static int claim_slot(pid_t pid);
static int app_index(const pw_target_t *app, const server_rec *host);
static void note_host(int index, const server_rec *host);
static int name_index(const char *name);
static int spare_index(const char *target);
static int bucket_of(apr_uint64_t us);
static int class_of(int status);
static int pid_gone(pid_t pid);
static void reap_dead(void);
static void sat_end(apr_time_t now);

/* Relaxed atomics: each counter stands alone (see the header comment). */
#define PW_ADD(p, v)   __atomic_fetch_add((p), (v), __ATOMIC_RELAXED)
#define PW_LOAD(p)     __atomic_load_n((p), __ATOMIC_RELAXED)
#define PW_STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)
#define PW_CAS(p, expected, desired)                                           \
    __atomic_compare_exchange_n((p), (expected), (desired), 0,                 \
                                __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)

/* Upper bounds of the histogram buckets: from half a millisecond (a hello
 * world app) to half a minute (a request about to hit a timeout). */
const double pw_metrics_bucket_le[PW_METRICS_BUCKETS - 1] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
    0.25,   0.5,   1,      2.5,   5,    10,    30
};
static const apr_uint64_t bucket_le_us[PW_METRICS_BUCKETS - 1] = {
    500,    1000,   2500,    5000,    10000,   25000,    50000,   100000,
    250000, 500000, 1000000, 2500000, 5000000, 10000000, 30000000
};

/* Spare entries: files served by handler and apps the config tree did not
 * show.  Shared hosting has a few files per tenant, so a few per virtual
 * host; bounded, since each costs a pw_counters_t in every child slot. */
#define PW_SPARE_APPS   8
#define PW_SPARE_HOST   4
#define PW_SPARE_MAX    64
#define PW_APP_NAME_MAX 512
#define PW_MAX_SLOTS    4096 /* beyond: children share the overflow */
#define PW_OTHER_APP    "(other)"
#define PW_SAMPLE_EVERY apr_time_from_sec(1)
#define PW_APP_CACHE    256 /* a power of 2 */
#define PW_NAME_HOSTS   4   /* hosts recorded per app; beyond: not listed */

/* --- the shared segment: head, app names, then nslots + 1 slots -------- */

/* Saturation: the share of time every worker was busy in an app.  One
 * sample per second (the first request to end in a second writes it) of
 * the cumulative saturated time, in a ring the reader looks a minute back
 * into. */
#define PW_SAT_RING 64

typedef struct {
    apr_int64_t sec;     /* apr_time_sec() of the sample, 0: none */
    apr_uint64_t sat_us; /* saturated_us at that second */
} pw_sat_sample_t;

typedef struct {
    apr_int64_t started; /* apr_time_t */
    apr_uint64_t child_starts;
    apr_uint64_t child_exits;
    /* Its own cache line: every request's begin and end change it. */
    apr_int64_t busy __attribute__((aligned(64))); /* in an app, all children */
    apr_int64_t saturated_since; /* apr_time_t; 0: not saturated */
    apr_uint64_t saturated_us;   /* cumulative, ended periods */
    pw_sat_sample_t ring[PW_SAT_RING] __attribute__((aligned(64)));
} __attribute__((aligned(64))) pw_shm_head_t;

enum { NAME_FREE = 0, NAME_CLAIMING, NAME_READY };

typedef struct {
    apr_uint32_t state;         /* spare entries only */
    char name[PW_APP_NAME_MAX]; /* NUL-terminated, may be truncated */
    /* Served by handler in these virtual hosts (server_rec *; 0: none). */
    apr_uintptr_t hosts[PW_NAME_HOSTS];
} pw_app_name_t;

/* A slot's owner word: state in the high half, pid in the low. */
enum { SLOT_FREE = 0, SLOT_LIVE, SLOT_EXITED };
#define SLOT_WORD(state, pid)                                                  \
    (((apr_uint64_t)(state) << 32) | (apr_uint32_t)(pid))
#define SLOT_STATE(w) ((int)((w) >> 32))
#define SLOT_PID(w)   ((pid_t)((w)&0xffffffffu))

typedef struct {
    apr_uint64_t owner;        /* SLOT_WORD() */
    apr_int64_t started;       /* apr_time_t, this pid */
    apr_uint64_t requests;     /* this pid */
    apr_uint64_t rss;          /* bytes, this pid's last reading */
    apr_int64_t rss_at;        /* apr_time_t of that reading */
    apr_uint64_t gc;           /* this pid, all interpreters */
    apr_uint64_t gil_us;       /* this pid */
    apr_uint64_t gil_us_total; /* every pid that held the slot */
} __attribute__((aligned(64))) pw_slot_t;

/* Followed, in each slot, by one of these per app. */
typedef struct {
    apr_uint64_t requests[PW_METRICS_CLASSES];
    apr_uint64_t exceptions;
    apr_uint64_t buckets[PW_METRICS_BUCKETS];
    apr_uint64_t duration_us;
    apr_uint64_t bytes_in;
    apr_uint64_t bytes_out;
    apr_int64_t in_flight;
    apr_uint64_t queue[PW_METRICS_BUCKETS]; /* queue wait, per bucket */
    apr_uint64_t queue_us;                  /* sum of queue waits */
} __attribute__((aligned(64))) pw_counters_t;

/* This generation's view of the segment: set in the parent's post_config,
 * inherited by the children, read-only after that. */
static struct {
    pw_shm_head_t *head;
    pw_app_name_t *names; /* napps */
    char *slots;          /* nslots + 1 of slot_size */
    apr_size_t slot_size;
    int nslots; /* real ones; the overflow is nslots */
    int napps;  /* registered + spares + other */
    int nregistered;
    const char **registered; /* full names of the registered apps */
    apr_hash_t *index;       /* registered target -> int index */
} g;

/* This child's slot and its index (-1: the shared overflow slot). */
static pw_slot_t *my_slot;
static int my_index = -1;

/* MaxRequestWorkers: the server is saturated when that many requests are in
 * apps at once (child_init). */
static apr_int64_t max_workers;

/* (pw_app_t, host) -> app index, filled in as a child meets its apps.  A
 * key is claimed (CLAIMED), its host and index written, then the key
 * published. */
static struct {
    const void *key;
    const server_rec *host;
    int index;
} app_cache[PW_APP_CACHE];
static const char cache_claimed;
#define CLAIMED ((const void *)&cache_claimed)

/* pw_metrics_python_sample(): per interpreter, touched with its GIL. */
static apr_time_t gc_sampled_at[PW_MAX_INTERPS];
static apr_uint64_t gc_collections[PW_MAX_INTERPS];

static pw_slot_t *slot_at(int i)
{
    return (pw_slot_t *)(g.slots + (apr_size_t)i * g.slot_size);
}

static pw_counters_t *counters_of(pw_slot_t *slot, int app)
{
    return (pw_counters_t *)(slot + 1) + app;
}

void pw_metrics_register_hooks(apr_pool_t *p)
{
    ap_hook_post_config(metrics_post_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_child_init(metrics_child_init, NULL, NULL, APR_HOOK_MIDDLE);
}

int pw_metrics_enabled(void)
{
    return g.head != NULL;
}

/* --- post_config: the segment, in the parent ---------------------------- */

static int metrics_post_config(apr_pool_t *pconf, apr_pool_t *plog,
                               apr_pool_t *ptemp, server_rec *s)
{
    apr_array_header_t *names;
    apr_shm_t *shm;
    apr_size_t names_size, size;
    apr_status_t rv;
    int limit = 0, spares = PW_SPARE_APPS, i;
    server_rec *vh;
    char *base;

    /* The first of the two startup passes only checks the config. */
    if (ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG
        || !pw_config_metrics(s)) {
        return OK;
    }

    names = apr_array_make(pconf, 8, sizeof(const char *));
    g.index = apr_hash_make(pconf);
    collect_apps(pconf, ap_conftree, names, g.index);
    g.registered = (const char **)names->elts;
    g.nregistered = names->nelts;
    for (vh = s->next; vh && spares < PW_SPARE_MAX; vh = vh->next) {
        spares += PW_SPARE_HOST;
    }
    g.napps =
        g.nregistered + (spares < PW_SPARE_MAX ? spares : PW_SPARE_MAX) + 1;

    if (ap_mpm_query(AP_MPMQ_HARD_LIMIT_DAEMONS, &limit) != APR_SUCCESS
        || limit < 1) {
        limit = 16;
    }
    g.nslots = limit > PW_MAX_SLOTS ? PW_MAX_SLOTS : limit;
    g.slot_size = sizeof(pw_slot_t) + g.napps * sizeof(pw_counters_t);
    names_size = APR_ALIGN(g.napps * sizeof(pw_app_name_t), 64);
    size = sizeof(pw_shm_head_t) + names_size
           + (apr_size_t)(g.nslots + 1) * g.slot_size;

    rv = apr_shm_create(&shm, size, NULL, pconf);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_STARTUP | APLOG_CRIT, rv, s,
                     "PW0502: could not create %" APR_SIZE_T_FMT " bytes of "
                     "anonymous shared memory for the metrics; set "
                     "PyWSGIMetrics Off to run without them",
                     size);
        memset(&g, 0, sizeof(g));
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    base = apr_shm_baseaddr_get(shm);
    memset(base, 0, size);
    g.head = (pw_shm_head_t *)base;
    g.names = (pw_app_name_t *)(base + sizeof(pw_shm_head_t));
    g.slots = base + sizeof(pw_shm_head_t) + names_size;
    g.head->started = apr_time_now();
    for (i = 0; i < g.nregistered; i++) {
        apr_cpystrn(g.names[i].name, g.registered[i], PW_APP_NAME_MAX);
        g.names[i].state = NAME_READY;
    }
    apr_cpystrn(g.names[g.napps - 1].name, PW_OTHER_APP, PW_APP_NAME_MAX);
    g.names[g.napps - 1].state = NAME_READY;
    /* Registered after apr_shm_create's own cleanup: runs before it. */
    apr_pool_cleanup_register(pconf, NULL, metrics_forget,
                              apr_pool_cleanup_null);

    ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, s,
                 "PW0500: metrics: %" APR_SIZE_T_FMT
                 " bytes of shared memory for %d apps (%d "
                 "configured) and %d child slots",
                 size, g.napps, g.nregistered, g.nslots);
    return OK;
}

/* The configuration is being re-read: the segment goes with pconf. */
static apr_status_t metrics_forget(void *data)
{
    memset(&g, 0, sizeof(g));
    /* Under -X the parent is the child too: nothing may point into the
     * segment that goes. */
    memset(app_cache, 0, sizeof(app_cache));
    my_slot = NULL;
    my_index = -1;
    return APR_SUCCESS;
}

/* The name an app is counted under: its target, or "target:callable" when
 * callable= names another than the default (a callable in the target
 * itself, "app.py:app" or "pkg.mod:app", is part of it already). */
static const char *app_label(char *buf, apr_size_t size, const char *target,
                             const char *callable, int factory)
{
    const char *last = strrchr(target, '/');

    if (strchr(last ? last : target, ':') || callable == NULL
        || (strcmp(callable, "application") == 0 && !factory)) {
        return target;
    }
    apr_snprintf(buf, size, "%s:%s%s", target, callable, factory ? "()" : "");
    return buf;
}

/* Every PyWSGIScriptAlias line, in virtual hosts too (<IfModule>, Include
 * and macros are already expanded in the tree).  TAKE_ARGV splits the
 * arguments with ap_getword_conf() too, so the target is the very string
 * pw_config.c keeps. */
static void collect_apps(apr_pool_t *p, const ap_directive_t *d,
                         apr_array_header_t *names, apr_hash_t *index)
{
    for (; d; d = d->next) {
        if (d->first_child) {
            collect_apps(p, d->first_child, names, index);
        }
        if (strcasecmp(d->directive, "PyWSGIScriptAlias") == 0) {
            const char *args = d->args;
            const char *target, *callable = NULL, *name;
            char *word, buf[PW_APP_NAME_MAX];
            apr_size_t len;
            int *idx, factory = 0;

            ap_getword_conf(p, &args); /* URL-PATH */
            target = ap_getword_conf(p, &args);
            while (*(word = ap_getword_conf(p, &args))) {
                if (strncmp(word, "callable=", 9) == 0 && word[9]) {
                    callable = word + 9;
                    len = strlen(word);
                    if (len > 11 && strcmp(word + len - 2, "()") == 0) {
                        word[len - 2] = '\0';
                        factory = 1;
                    }
                }
            }
            name = app_label(buf, sizeof(buf), target, callable, factory);
            if (*target == '\0'
                || apr_hash_get(index, name, APR_HASH_KEY_STRING)) {
                continue;
            }
            name = apr_pstrdup(p, name);
            idx = apr_palloc(p, sizeof(*idx));
            *idx = names->nelts;
            *(const char **)apr_array_push(names) = name;
            apr_hash_set(index, name, APR_HASH_KEY_STRING, idx);
        }
    }
}

/* --- a child's life ---------------------------------------------------- */

static void metrics_child_init(apr_pool_t *pchild, server_rec *s)
{
    pid_t pid = getpid();

    if (g.head == NULL) {
        return;
    }
    max_workers = pw_metrics_max_workers();
    my_index = claim_slot(pid);
    if (my_index < 0) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s,
                     "PW0503: metrics: no "
                     "free child slot for pid %" APR_PID_T_FMT " (%d in "
                     "use); its requests count in the totals but it is not "
                     "listed as a child",
                     pid, g.nslots);
        my_slot = slot_at(g.nslots);
        return;
    }
    my_slot = slot_at(my_index);
    apr_pool_cleanup_register(pchild, my_slot, metrics_child_exit,
                              apr_pool_cleanup_null);
}

static void give_back(pw_slot_t *slot);

/* A slot still marked live with this very pid first: its child died
 * without a word (SIGKILL) and the kernel gave its pid to us, so it is
 * ours to retake -- taking another would list the pid twice.  Then the
 * first slot nobody lives in, else one whose child died unannounced; -1
 * if none. */
static int claim_slot(pid_t pid)
{
    int pass, i;

    reap_dead();
    for (pass = 0; pass < 3; pass++) {
        for (i = 0; i < g.nslots; i++) {
            pw_slot_t *slot = slot_at(i);
            apr_uint64_t w = __atomic_load_n(&slot->owner, __ATOMIC_ACQUIRE);
            int live = SLOT_STATE(w) == SLOT_LIVE;

            if (pass == 0   ? !live || SLOT_PID(w) != pid
                : pass == 1 ? live
                            : !live || !pid_gone(SLOT_PID(w))) {
                continue;
            }
            if (!PW_CAS(&slot->owner, &w, SLOT_WORD(SLOT_LIVE, pid))) {
                continue;
            }
            PW_STORE(&slot->started, apr_time_now());
            PW_STORE(&slot->requests, 0);
            PW_STORE(&slot->rss, pw_metrics_rss(0));
            PW_STORE(&slot->rss_at, apr_time_now());
            PW_STORE(&slot->gc, 0);
            PW_STORE(&slot->gil_us, 0);
            give_back(slot); /* its in-flight requests died with it */
            PW_ADD(&g.head->child_starts, 1);
            if (pass != 1) {
                PW_ADD(&g.head->child_exits, 1); /* it died */
            }
            return i;
        }
    }
    PW_ADD(&g.head->child_starts, 1);
    return -1;
}

/* Slots still marked live whose child is gone: marked exited, their
 * in-flight requests given back.  Else the shared busy count keeps them
 * for as long as nobody retakes the slot (a replacement child may take a
 * free one), and after MaxRequestWorkers crashes the server looks
 * saturated for good. */
static void reap_dead(void)
{
    int i;

    for (i = 0; i < g.nslots; i++) {
        pw_slot_t *slot = slot_at(i);
        apr_uint64_t w = __atomic_load_n(&slot->owner, __ATOMIC_ACQUIRE);

        if (SLOT_STATE(w) == SLOT_LIVE && pid_gone(SLOT_PID(w))
            && PW_CAS(&slot->owner, &w, SLOT_WORD(SLOT_EXITED, SLOT_PID(w)))) {
            PW_ADD(&g.head->child_exits, 1);
            give_back(slot);
        }
    }
}

/* A dead child's requests in apps leave the shared busy count; a saturated
 * period they kept open ends (the count may step over MaxRequestWorkers
 * here, never at a request's end). */
static void give_back(pw_slot_t *slot)
{
    int a;

    for (a = 0; a < g.napps; a++) {
        apr_int64_t f = __atomic_exchange_n(&counters_of(slot, a)->in_flight, 0,
                                            __ATOMIC_RELAXED);
        apr_int64_t old;

        if (f > 0) {
            old = PW_ADD(&g.head->busy, -f);
            if (old >= max_workers && old - f < max_workers) {
                sat_end(apr_time_now());
            }
        }
    }
}

/* pchild cleanup: the child exits (recycled, idle, restart, stop). */
static apr_status_t metrics_child_exit(void *data)
{
    pw_slot_t *slot = data;
    apr_uint64_t w = SLOT_WORD(SLOT_LIVE, getpid());

    PW_STORE(&slot->rss, pw_metrics_rss(0));
    if (PW_CAS(&slot->owner, &w, SLOT_WORD(SLOT_EXITED, getpid()))) {
        PW_ADD(&g.head->child_exits, 1);
    }
    return APR_SUCCESS;
}

static int pid_gone(pid_t pid)
{
    return pid > 0 && kill(pid, 0) < 0 && errno == ESRCH;
}

/* Resident set size of pid (0: this process) from /proc/PID/statm, its
 * cheapest source: one short read.  0 when unknown. */
apr_uint64_t pw_metrics_rss(pid_t pid)
{
    char path[64], buf[128];
    unsigned long long size, resident;
    ssize_t n;
    int fd;

    if (pid == 0) {
        apr_cpystrn(path, "/proc/self/statm", sizeof(path));
    }
    else {
        apr_snprintf(path, sizeof(path), "/proc/%" APR_PID_T_FMT "/statm", pid);
    }
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return 0;
    }
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0) {
        return 0;
    }
    buf[n] = '\0';
    if (sscanf(buf, "%llu %llu", &size, &resident) != 2) {
        return 0;
    }
    return (apr_uint64_t)resident * (apr_uint64_t)sysconf(_SC_PAGESIZE);
}

/* --- the hot path ------------------------------------------------------ */

/* The hot path: one probe of this child's table, usually.  The first time
 * a child meets an app (in a host, for a file served by handler): its
 * name, looked up among those of the config (shared read-only by every
 * child) or the spares, and the host noted in its entry. */
static int app_index(const pw_target_t *app, const server_rec *host)
{
    apr_uintptr_t h =
        (((apr_uintptr_t)app ^ (apr_uintptr_t)host) >> 4) * 2654435761u;
    char buf[PW_APP_NAME_MAX];
    int i, index;

    for (i = 0; i < PW_APP_CACHE; i++) {
        int k = (h + i) & (PW_APP_CACHE - 1);
        const void *key = __atomic_load_n(&app_cache[k].key, __ATOMIC_ACQUIRE);
        if (key == app && app_cache[k].host == host) {
            return app_cache[k].index;
        }
        if (key == NULL) {
            break;
        }
    }
    index = name_index(app_label(buf, sizeof(buf), app->target, app->callable,
                                 app->call_factory));
    if (host) {
        note_host(index, host);
    }
    for (i = 0; i < PW_APP_CACHE; i++) {
        int k = (h + i) & (PW_APP_CACHE - 1);
        const void *key = NULL;
        if (PW_CAS(&app_cache[k].key, &key, CLAIMED)) {
            app_cache[k].host = host;
            app_cache[k].index = index;
            __atomic_store_n(&app_cache[k].key, (const void *)app,
                             __ATOMIC_RELEASE);
            break;
        }
    }
    return index;
}

/* Records in the app's entry that host served it, unless it is there
 * already or the entry has no room left ("(other)" has none: it is no
 * one's app). */
static void note_host(int index, const server_rec *host)
{
    apr_uintptr_t *hosts = g.names[index].hosts;
    int i;

    for (i = 0; i < PW_NAME_HOSTS && index < g.napps - 1; i++) {
        apr_uintptr_t seen = 0;

        if (PW_CAS(&hosts[i], &seen, (apr_uintptr_t)host)
            || seen == (apr_uintptr_t)host) {
            return;
        }
    }
}

static int name_index(const char *name)
{
    int *idx = apr_hash_get(g.index, name, APR_HASH_KEY_STRING);

    return idx ? *idx : spare_index(name);
}

/* An app the config tree did not show: find or claim a spare entry. */
static int spare_index(const char *target)
{
    int i, spins;

    for (i = g.nregistered; i < g.napps - 1; i++) {
        pw_app_name_t *n = &g.names[i];
        apr_uint32_t st = __atomic_load_n(&n->state, __ATOMIC_ACQUIRE);

        if (st == NAME_FREE) {
            if (PW_CAS(&n->state, &st, NAME_CLAIMING)) {
                apr_cpystrn(n->name, target, sizeof(n->name));
                __atomic_store_n(&n->state, NAME_READY, __ATOMIC_RELEASE);
                return i;
            }
        }
        for (spins = 0; st == NAME_CLAIMING && spins < 1000; spins++) {
            sched_yield(); /* another thread is copying a name */
            st = __atomic_load_n(&n->state, __ATOMIC_ACQUIRE);
        }
        if (st == NAME_READY
            && strncmp(n->name, target, sizeof(n->name) - 1) == 0) {
            return i;
        }
    }
    return g.napps - 1;
}

static int bucket_of(apr_uint64_t us)
{
    int i;

    for (i = 0; i < PW_METRICS_BUCKETS - 1; i++) {
        if (us <= bucket_le_us[i]) { /* Prometheus: le, "<=" */
            return i;
        }
    }
    return PW_METRICS_BUCKETS - 1;
}

static int class_of(int status)
{
    int c = status / 100;

    return c < 1 ? 0 : c > PW_METRICS_CLASSES ? PW_METRICS_CLASSES - 1 : c - 1;
}

/* MaxRequestWorkers, as mod_status counts it: daemons x threads. */
int pw_metrics_max_workers(void)
{
    int daemons = 0, threads = 0;

    if (ap_mpm_query(AP_MPMQ_MAX_DAEMONS, &daemons) != APR_SUCCESS
        || daemons < 1) {
        daemons = 1;
    }
    if (ap_mpm_query(AP_MPMQ_MAX_THREADS, &threads) != APR_SUCCESS
        || threads < 1) {
        threads = 1;
    }
    return daemons * threads;
}

/* A saturated period ends: its time is added up. */
static void sat_end(apr_time_t now)
{
    apr_int64_t since =
        __atomic_exchange_n(&g.head->saturated_since, 0, __ATOMIC_ACQ_REL);

    if (since > 0 && now > since) {
        PW_ADD(&g.head->saturated_us, (apr_uint64_t)(now - since));
    }
}

/* The first request to end in a new second records the cumulative
 * saturated time: one load and compare on every other request. */
static void sat_sample(apr_time_t now)
{
    apr_int64_t sec = apr_time_sec(now);
    pw_sat_sample_t *s = &g.head->ring[sec % PW_SAT_RING];
    apr_int64_t old = PW_LOAD(&s->sec);

    if (old != sec && PW_CAS(&s->sec, &old, sec)) {
        PW_STORE(&s->sat_us, PW_LOAD(&g.head->saturated_us));
    }
}

void pw_metrics_request_begin(const pw_target_t *target, const server_rec *host)
{
    if (my_slot == NULL) {
        return;
    }
    PW_ADD(&counters_of(my_slot, app_index(target, host))->in_flight, 1);
    if (PW_ADD(&g.head->busy, 1) + 1 == max_workers) {
        apr_int64_t none = 0;
        PW_CAS(&g.head->saturated_since, &none, apr_time_now());
    }
}

/* The wait before the app: from the last bytes the kernel received on the
 * connection (TCP_INFO; this sees the listen backlog and the MPM's queue,
 * which r->request_time, stamped when a worker reads the request line,
 * does not) or from r->request_time, whichever is longer. */
apr_interval_time_t pw_metrics_queue_wait(request_rec *r, apr_time_t start)
{
    apr_interval_time_t wait = start - r->request_time;
#ifdef TCP_INFO
    apr_socket_t *sock = ap_get_conn_socket(r->connection);
    apr_os_sock_t fd;
    struct tcp_info ti;
    socklen_t len = sizeof(ti);

    if (sock && apr_os_sock_get(&fd, sock) == APR_SUCCESS
        && getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) == 0
        && len >= offsetof(struct tcp_info, tcpi_last_data_recv)
                      + sizeof(ti.tcpi_last_data_recv)
        && (apr_interval_time_t)ti.tcpi_last_data_recv * 1000 > wait) {
        wait = (apr_interval_time_t)ti.tcpi_last_data_recv * 1000;
    }
#endif
    return wait > 0 ? wait : 0;
}

void pw_metrics_request_end(request_rec *r, const pw_metrics_sample_t *m)
{
    apr_interval_time_t slow = m->slow_request;
    apr_interval_time_t app_us = m->duration - m->gil_wait;
    apr_uint64_t us = m->duration > 0 ? (apr_uint64_t)m->duration : 0;
    apr_uint64_t gil = m->gil_wait > 0 ? (apr_uint64_t)m->gil_wait : 0;
    apr_uint64_t qw = m->queue_wait > 0 ? (apr_uint64_t)m->queue_wait : 0;
    pw_counters_t *c;
    apr_time_t now, at;

    /* For LogFormat's %{pywsgi-app-us}n and %{pywsgi-interpreter}n: the
     * app's own time (the wait for the GIL left out) and where it ran. */
    apr_table_setn(r->notes, "pywsgi-app-us",
                   apr_off_t_toa(r->pool, app_us > 0 ? app_us : 0));
    apr_table_setn(r->notes, "pywsgi-interpreter", m->interp_name);
    if (slow > 0 && m->duration > slow) {
        ap_log_rerror(
            APLOG_MARK, APLOG_WARNING, 0, r,
            "PW0501: %s: request "
            "took %.3f s (PyWSGISlowRequest %s s)",
            r->uri, (double)m->duration / APR_USEC_PER_SEC,
            pw_metrics_fmt_seconds(r->pool, (double)slow / APR_USEC_PER_SEC));
    }
    if (my_slot == NULL) {
        return;
    }

    c = counters_of(my_slot, app_index(m->target, m->host));
    PW_ADD(&c->requests[class_of(m->status >= 100 ? m->status : r->status)], 1);
    if (m->app_failed) {
        PW_ADD(&c->exceptions, 1);
    }
    PW_ADD(&c->buckets[bucket_of(us)], 1);
    PW_ADD(&c->duration_us, us);
    if (m->bytes_in > 0) {
        PW_ADD(&c->bytes_in, (apr_uint64_t)m->bytes_in);
    }
    if (m->bytes_out > 0) {
        PW_ADD(&c->bytes_out, (apr_uint64_t)m->bytes_out);
    }
    PW_ADD(&c->in_flight, -1);
    PW_ADD(&c->queue[bucket_of(qw)], 1);
    PW_ADD(&c->queue_us, qw);
    now = apr_time_now();
    if (PW_ADD(&g.head->busy, -1) == max_workers) {
        sat_end(now);
    }
    sat_sample(now);
    PW_ADD(&my_slot->gil_us_total, gil);
    if (my_index < 0) {
        return; /* the overflow slot has no per-pid figures */
    }
    PW_ADD(&my_slot->requests, 1);
    PW_ADD(&my_slot->gil_us, gil);

    /* RSS at most once a second, by whichever thread gets there first. */
    at = PW_LOAD(&my_slot->rss_at);
    if (now - at >= PW_SAMPLE_EVERY && PW_CAS(&my_slot->rss_at, &at, now)) {
        PW_STORE(&my_slot->rss, pw_metrics_rss(0));
    }
}

/* GIL held.  gc.get_stats() per interpreter, at most once a second each;
 * the child's figure is the sum over its interpreters.  The caller's
 * exception state, if any, is kept. */
void pw_metrics_python_sample(int interp)
{
    int i;
    PyObject *exc, *gc = NULL, *stats = NULL;
    apr_uint64_t sum = 0, total = 0;
    apr_time_t now;
    Py_ssize_t k;

    if (my_slot == NULL || my_index < 0 || interp < 0
        || interp >= PW_MAX_INTERPS) {
        return;
    }
    now = apr_time_now();
    if (now - gc_sampled_at[interp] < PW_SAMPLE_EVERY) {
        return;
    }
    gc_sampled_at[interp] = now;

    exc = PW_ERR_TAKE();
    gc = PyImport_ImportModule("gc");
    stats = gc ? PyObject_CallMethod(gc, "get_stats", NULL) : NULL;
    if (stats == NULL || !PyList_Check(stats)) {
        goto done;
    }
    for (k = 0; k < PyList_GET_SIZE(stats); k++) {
        PyObject *gen = PyList_GET_ITEM(stats, k); /* borrowed */
        PyObject *n = PyDict_Check(gen)
                          ? PyDict_GetItemString(gen, "collections")
                          : NULL; /* borrowed */
        if (n && PyLong_Check(n)) {
            unsigned long long v = PyLong_AsUnsignedLongLong(n);
            if (v != (unsigned long long)-1) {
                sum += v;
            }
        }
    }
    PW_STORE(&gc_collections[interp], sum);
    for (i = 0; i < PW_MAX_INTERPS; i++) {
        total += PW_LOAD(&gc_collections[i]);
    }
    PW_STORE(&my_slot->gc, total);

done:
    PyErr_Clear();
    Py_XDECREF(stats);
    Py_XDECREF(gc);
    PW_ERR_RESTORE(exc);
}

/* --- reading ----------------------------------------------------------- */

typedef struct {
    pid_t pid;
    apr_time_t started;
    int slot;
} live_slot_t;

static int live_slot_cmp(const void *x, const void *y)
{
    const live_slot_t *a = x, *b = y;

    if (a->pid != b->pid) {
        return a->pid < b->pid ? -1 : 1;
    }
    return a->started > b->started ? -1 : a->started < b->started;
}

/* Slots marked live whose pid a newer live slot also has: a child that
 * died unannounced and whose pid went to a new child before that child
 * could retake the slot (claim_slot).  The newest wins, so no pid is ever
 * listed twice (Prometheus rejects a scrape with two equal series). */
static char *shadowed_slots(apr_pool_t *p)
{
    char *shadowed = apr_pcalloc(p, g.nslots + 1);
    live_slot_t *ls = apr_palloc(p, (g.nslots + 1) * sizeof(*ls));
    int i, n = 0;

    for (i = 0; i < g.nslots; i++) {
        apr_uint64_t w = __atomic_load_n(&slot_at(i)->owner, __ATOMIC_ACQUIRE);

        if (SLOT_STATE(w) == SLOT_LIVE) {
            ls[n].pid = SLOT_PID(w);
            ls[n].started = PW_LOAD(&slot_at(i)->started);
            ls[n++].slot = i;
        }
    }
    qsort(ls, n, sizeof(*ls), live_slot_cmp);
    for (i = 1; i < n; i++) {
        if (ls[i].pid == ls[i - 1].pid) {
            shadowed[ls[i].slot] = 1;
        }
    }
    return shadowed;
}

/* Busy workers now; saturated time since the start and over the last
 * minute (from the per-second ring), an ongoing period included. */
static void saturation(pw_metrics_snapshot_t *snap)
{
    apr_int64_t now_sec = apr_time_sec(snap->now), base_sec = 0;
    apr_int64_t since = PW_LOAD(&g.head->saturated_since);
    apr_uint64_t total = PW_LOAD(&g.head->saturated_us), base_us = 0;
    apr_uint64_t ongoing = 0;
    double window;
    int i;

    snap->max_workers = pw_metrics_max_workers();
    snap->busy = PW_LOAD(&g.head->busy);
    if (snap->busy < 0) {
        snap->busy = 0;
    }
    if (since > 0 && snap->now > since) {
        ongoing = (apr_uint64_t)(snap->now - since);
    }
    snap->saturated_us = total + ongoing;
    /* The oldest sample no more than a minute old is the baseline. */
    for (i = 0; i < PW_SAT_RING; i++) {
        apr_int64_t sec = PW_LOAD(&g.head->ring[i].sec);
        if (sec >= now_sec - 60 && sec <= now_sec
            && (base_sec == 0 || sec < base_sec)) {
            base_sec = sec;
            base_us = PW_LOAD(&g.head->ring[i].sat_us);
        }
    }
    if (base_sec == 0 || base_us > total) {
        /* No request ended in the last minute: only an ongoing period. */
        base_sec = now_sec - 60;
        base_us = total;
    }
    window = (double)(snap->now - apr_time_from_sec(base_sec));
    if (ongoing > (apr_uint64_t)window) {
        ongoing = (apr_uint64_t)window;
    }
    snap->saturated_share =
        window > 0 ? (double)(total - base_us + ongoing) / window : 0;
    if (snap->saturated_share > 1) {
        snap->saturated_share = 1;
    }
}

pw_metrics_snapshot_t *pw_metrics_snapshot(apr_pool_t *p)
{
    pw_metrics_snapshot_t *snap;
    pw_metrics_app_t *apps;
    char *shadowed;
    int i, a, b, n;

    if (g.head == NULL) {
        return NULL;
    }
    snap = apr_pcalloc(p, sizeof(*snap));
    apps = apr_pcalloc(p, g.napps * sizeof(*apps));
    snap->children = apr_pcalloc(p, g.nslots * sizeof(*snap->children));
    snap->started = PW_LOAD(&g.head->started);
    snap->now = apr_time_now();
    reap_dead();
    snap->child_starts = PW_LOAD(&g.head->child_starts);
    snap->child_exits = PW_LOAD(&g.head->child_exits);
    saturation(snap);

    shadowed = shadowed_slots(p);
    for (i = 0; i <= g.nslots; i++) {
        pw_slot_t *slot = slot_at(i);
        apr_uint64_t w = __atomic_load_n(&slot->owner, __ATOMIC_ACQUIRE);
        int overflow = i == g.nslots;
        int live;

        if (!overflow && SLOT_STATE(w) == SLOT_FREE) {
            continue; /* never used: nothing but zeros */
        }
        live = overflow
               || (SLOT_STATE(w) == SLOT_LIVE && !shadowed[i]
                   && !pid_gone(SLOT_PID(w)));
        if (!live) {
            /* Exited, or died without a word (its slot not yet retaken,
             * which will count it): either way gone. */
            snap->child_exits += SLOT_STATE(w) == SLOT_LIVE;
        }
        snap->gil_wait_us += PW_LOAD(&slot->gil_us_total);
        if (live && !overflow) {
            pw_metrics_child_t *ch = &snap->children[snap->nchildren++];
            ch->slot = i;
            ch->pid = SLOT_PID(w);
            ch->started = PW_LOAD(&slot->started);
            ch->requests = PW_LOAD(&slot->requests);
            ch->gc_collections = PW_LOAD(&slot->gc);
            ch->gil_wait_us = PW_LOAD(&slot->gil_us);
            /* Fresh from /proc when it can; the child's own reading
             * (at most a second old when it is busy) otherwise. */
            ch->rss = pw_metrics_rss(ch->pid);
            if (ch->rss == 0) {
                ch->rss = PW_LOAD(&slot->rss);
            }
        }
        for (a = 0; a < g.napps; a++) {
            pw_counters_t *c = counters_of(slot, a);
            pw_metrics_app_t *o = &apps[a];

            for (b = 0; b < PW_METRICS_CLASSES; b++) {
                o->requests[b] += PW_LOAD(&c->requests[b]);
            }
            o->exceptions += PW_LOAD(&c->exceptions);
            for (b = 0; b < PW_METRICS_BUCKETS; b++) {
                o->buckets[b] += PW_LOAD(&c->buckets[b]);
            }
            o->duration_us += PW_LOAD(&c->duration_us);
            o->bytes_in += PW_LOAD(&c->bytes_in);
            o->bytes_out += PW_LOAD(&c->bytes_out);
            for (b = 0; b < PW_METRICS_BUCKETS; b++) {
                o->queue[b] += PW_LOAD(&c->queue[b]);
            }
            o->queue_us += PW_LOAD(&c->queue_us);
            if (live) {
                apr_int64_t f = PW_LOAD(&c->in_flight);
                o->in_flight += f;
                if (!overflow) {
                    snap->children[snap->nchildren - 1].in_flight += f;
                }
            }
        }
    }

    /* Every registered app, the spares in use, "(other)" if it counted. */
    snap->apps = apps;
    for (a = 0, n = 0; a < g.napps; a++) {
        pw_metrics_app_t *o = &apps[a];
        int spare = a >= g.nregistered && a < g.napps - 1;

        for (b = 0; b < PW_METRICS_BUCKETS; b++) {
            o->count += o->buckets[b];
        }
        o->entry = a;
        if (a < g.nregistered) {
            o->app = g.registered[a];
        }
        else if (spare
                 && __atomic_load_n(&g.names[a].state, __ATOMIC_ACQUIRE)
                        == NAME_READY) {
            o->app = apr_pstrdup(p, g.names[a].name);
        }
        else if (!spare && (o->count || o->in_flight)) {
            o->app = PW_OTHER_APP;
        }
        if (o->app == NULL) {
            continue;
        }
        if (o->in_flight < 0) {
            o->in_flight = 0; /* a request ending as we read */
        }
        snap->in_flight += o->in_flight;
        apps[n++] = *o;
    }
    snap->napps = n;
    return snap;
}

/* Whether the entry's app was served by handler in host s. */
static int served_in(int entry, const server_rec *s)
{
    int i;

    for (i = 0; i < PW_NAME_HOSTS; i++) {
        if (__atomic_load_n(&g.names[entry].hosts[i], __ATOMIC_ACQUIRE)
            == (apr_uintptr_t)s) {
            return 1;
        }
    }
    return 0;
}

void pw_metrics_snapshot_limit(pw_metrics_snapshot_t *snap, server_rec *s,
                               apr_pool_t *p)
{
    const apr_array_header_t *routes = pw_config_routes(s);
    const pw_route_t *route = (const pw_route_t *)routes->elts;
    apr_hash_t *own = apr_hash_make(p);
    char buf[PW_APP_NAME_MAX];
    int i, n;

    for (i = 0; i < routes->nelts; i++) {
        if (route[i].server == s) {
            const pw_target_t *t = route[i].target;
            apr_hash_set(
                own,
                apr_pstrdup(p, app_label(buf, sizeof(buf), t->target,
                                         t->callable, t->call_factory)),
                APR_HASH_KEY_STRING, "");
        }
    }
    snap->in_flight = 0;
    for (i = 0, n = 0; i < snap->napps; i++) {
        if (apr_hash_get(own, snap->apps[i].app, APR_HASH_KEY_STRING)
            || served_in(snap->apps[i].entry, s)) {
            snap->in_flight += snap->apps[i].in_flight;
            snap->apps[n++] = snap->apps[i];
        }
    }
    snap->napps = n;
    snap->nchildren = 0;
    snap->host = s->server_hostname ? s->server_hostname : "";
}

const char *pw_metrics_fmt_seconds(apr_pool_t *p, double s)
{
    char *out = apr_psprintf(p, "%.6f", s);
    char *end = out + strlen(out) - 1;

    while (*end == '0') {
        *end-- = '\0';
    }
    if (*end == '.') {
        *end = '\0';
    }
    return out;
}

double pw_metrics_quantile(const pw_metrics_app_t *a, double q)
{
    return pw_metrics_quantile_of(a->buckets, q);
}

double pw_metrics_quantile_of(const apr_uint64_t *buckets, double q)
{
    double rank, seen = 0, lower = 0;
    apr_uint64_t count = 0;
    int i;

    for (i = 0; i < PW_METRICS_BUCKETS; i++) {
        count += buckets[i];
    }
    if (count == 0) {
        return -1;
    }
    rank = q * (double)count;
    for (i = 0; i < PW_METRICS_BUCKETS - 1; i++) {
        double n = (double)buckets[i];
        if (n > 0 && seen + n >= rank) {
            return lower
                   + (pw_metrics_bucket_le[i] - lower) * (rank - seen) / n;
        }
        seen += n;
        lower = pw_metrics_bucket_le[i];
    }
    return pw_metrics_bucket_le[PW_METRICS_BUCKETS - 2];
}
