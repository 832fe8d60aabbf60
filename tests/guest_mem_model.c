/* The mmap family in the guest against native Linux: the same sequences, the same results, page by page. */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#include "guest_common.h"

/*
 * Each sequence of mmap/mprotect/munmap/madvise/mremap calls and stores runs natively in a
 * forked process and in the guest (in the root alone, in the root while other lwCs hold
 * snapshots of its memory, and in a child lwC), over the same window of pages. After every
 * call the run records the call's result and errno and, for each page of the window, whether
 * the kernel can read and write it (a write and a read through a pipe: EFAULT or not) and its
 * first byte. A page the kernel can write is then also stored to by the CPU itself, so a view
 * that the host's checks accept but the guest's page table refuses kills the run. The traces
 * must be identical.
 */

#define PG 4096UL
#define NPAGES 16
#define WIN ((char *)0x3c0000000000UL) /* fixed, far from anything the process maps */
#define MAXOPS 48
#define TRACE_MAX (MAXOPS * (2 + NPAGES) + 4)

enum op_kind { OP_MMAP, OP_MPROTECT, OP_MUNMAP, OP_DONTNEED, OP_STORE, OP_MREMAP, OP_MRESIZE, OP_SNAPSHOT, OP_KINDS };

struct op {
	int kind;
	unsigned page, n, page2, n2; /* first page and count; mremap: new count and target page */
	int prot, flags;
	unsigned char byte;
};

/* The traces of one run: a word per call result and per page, written where every lwC sees it. */
struct trace {
	int len, died_at;
	int w[TRACE_MAX];
};

static const int prots[] = { PROT_NONE, PROT_READ, PROT_READ | PROT_WRITE, PROT_READ | PROT_EXEC };
static const int xflags[] = { 0, MAP_NORESERVE, MAP_STACK, MAP_NORESERVE | MAP_STACK };

static uint64_t rng_next(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* A random sequence: ranges often run past the window's mapped parts (holes), as the model's do. */
static int ops_make(uint64_t seed, struct op *ops, int nops, int snapshots)
{
	uint64_t s = seed * 0x9e3779b97f4a7c15ULL + 1;

	for (int i = 0; i < nops; i++) {
		struct op *o = &ops[i];
		memset(o, 0, sizeof(*o));
		o->kind = (int)(rng_next(&s) % OP_KINDS);
		if (o->kind == OP_SNAPSHOT && !snapshots)
			o->kind = OP_STORE;
		if (i < 2)
			o->kind = OP_MMAP; /* something to work on */
		o->page = (unsigned)(rng_next(&s) % NPAGES);
		o->n = 1 + (unsigned)(rng_next(&s) % (NPAGES - o->page));
		o->prot = prots[rng_next(&s) % 4];
		o->flags = xflags[rng_next(&s) % 4];
		o->byte = (unsigned char)(1 + rng_next(&s) % 250);
		o->n2 = 1 + (unsigned)(rng_next(&s) % 4);
		o->page2 = (unsigned)(rng_next(&s) % (NPAGES - o->n2 + 1));
		if ((o->kind == OP_MREMAP || o->kind == OP_MRESIZE) && o->n > 4)
			o->n = 4;
	}
	return nops;
}

static const char *op_name(int k)
{
	static const char *const n[] = { "mmap", "mprotect", "munmap", "madvise(DONTNEED)", "store", "mremap",
					 "mremap in place", "snapshot" };
	return k >= 0 && k < OP_KINDS ? n[k] : "?";
}

static int pipefd[2];

/* What the kernel may do at p: bit 0 read, bit 1 write; the first byte in bits 8..15 when readable. */
static int page_probe(char *p)
{
	unsigned char b = 0;
	int st = 0;

	if (write(pipefd[1], p, 1) == 1) {
		st |= 1;
		if (read(pipefd[0], &b, 1) != 1)
			abort();
		st |= b << 8;
		/* the same byte back in: writable or EFAULT, and the contents stay */
		if (write(pipefd[1], &b, 1) != 1)
			abort();
		if (read(pipefd[0], p, 1) == 1) {
			st |= 2;
		} else {
			unsigned char drain;
			if (read(pipefd[0], &drain, 1) != 1)
				abort();
		}
	}
	if (st & 2) {
		/* the CPU's own store must work where the kernel's does */
		volatile char *q = p;
		*q = *q;
	}
	return st;
}

/* Creates an lwC holding a snapshot of the caller's memory, kept alive (native runs: nothing). */
static int snapshot_take(void)
{
	struct lwc_msg in;
	int c = lwc_create(NULL, 0, 0, &in);

	if (c == LWC_SWITCHED)
		lwc_switch_discard(in.src, NULL, 0); /* never switched into here */
	return c;
}

static long op_run(const struct op *o, int guest)
{
	char *a = WIN + o->page * PG;
	size_t len = o->n * PG;

	switch (o->kind) {
	case OP_MMAP: {
		void *r = mmap(a, len, o->prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | o->flags, -1, 0);
		return r == MAP_FAILED ? -1 : r == a ? 0 : 1;
	}
	case OP_MPROTECT:
		return mprotect(a, len, o->prot);
	case OP_MUNMAP:
		return munmap(a, len);
	case OP_DONTNEED:
		return madvise(a, len, MADV_DONTNEED);
	case OP_STORE:
		/* only where the kernel says the page is writable: a native fault would end the run */
		if ((page_probe(a) & 2) == 0)
			return 2;
		*(volatile unsigned char *)a = o->byte;
		return 0;
	case OP_MREMAP:
	case OP_MRESIZE: {
		/* from memory mapped in one piece just now: how mremap treats ranges over several
		   mappings and holes differs between kernel versions (6.17 began moving several) */
		char *to = WIN + o->page2 * PG;
		if (mmap(a, len, o->prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | o->flags, -1, 0) != a)
			return -2;
		if (o->prot & PROT_WRITE)
			*(volatile unsigned char *)a = o->byte;
		void *r = o->kind == OP_MRESIZE ? mremap(a, len, o->n2 * PG, 0)
						: mremap(a, len, o->n2 * PG, MREMAP_MAYMOVE | MREMAP_FIXED, to);
		return r == MAP_FAILED ? -1 : r == (o->kind == OP_MRESIZE ? a : to) ? 0 : 1;
	}
	case OP_SNAPSHOT:
		return guest ? (snapshot_take() >= 0 ? 0 : -1) : 0;
	}
	return -3;
}

/* Runs the sequence, appending to t; in the guest as well as natively. */
static void ops_trace(const struct op *ops, int nops, struct trace *t, int guest)
{
	t->len = 0;
	t->died_at = -1;
	for (int i = 0; i < nops; i++) {
		errno = 0;
		t->died_at = i; /* until the call and its probes are through */
		long r = op_run(&ops[i], guest);
		t->w[t->len++] = (int)r;
		t->w[t->len++] = r < 0 ? errno : 0;
		for (unsigned p = 0; p < NPAGES; p++)
			t->w[t->len++] = page_probe(WIN + p * PG);
		t->died_at = -1;
	}
}

enum mode { NATIVE, ROOT_ALONE, ROOT_SNAPSHOTS, CHILD_LWC };

static struct trace *shared_trace(void)
{
	void *p = mmap(NULL, sizeof(struct trace), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	cr_assert_neq(p, MAP_FAILED);
	return p;
}

/* One run in a process of its own; the trace comes back through shared memory. */
static void run_mode(enum mode m, const struct op *ops, int nops, struct trace *t)
{
	pid_t pid;
	int st;

	memset(t, 0, sizeof(*t));
	t->died_at = -2;
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		munmap(WIN, NPAGES * PG);
		if (m != NATIVE && vmlwc_init(NULL) != 0)
			_exit(200);
		if (pipe(pipefd) < 0)
			_exit(201);
		if (m == CHILD_LWC) {
			struct lwc_msg in;
			int c = lwc_create(NULL, 0, 0, &in);
			if (c == LWC_SWITCHED) {
				ops_trace(ops, nops, t, 1);
				lwc_switch(in.src, NULL, 0, &in);
				_exit(202);
			}
			if (c < 0 || lwc_switch(c, NULL, 0, &in) != LWC_SWITCHED)
				_exit(203);
			_exit(0);
		}
		ops_trace(ops, nops, t, m != NATIVE && m != ROOT_ALONE);
		_exit(0);
	}
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	cr_assert(!(WIFEXITED(st) && WEXITSTATUS(st) == 200), "vmlwc_init failed in the child: %s", vmlwc_strerror());
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		t->died_at = t->died_at >= 0 ? t->died_at : 1000 + (WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
}

static const char *mode_name(enum mode m)
{
	static const char *const n[] = { "native", "the root alone", "the root with snapshots", "a child lwC" };
	return n[m];
}

static void op_print(char *buf, size_t n, const struct op *o)
{
	switch (o->kind) {
	case OP_MMAP:
		snprintf(buf, n, "mmap(page %u, %u pages, prot %d, flags %#x)", o->page, o->n, o->prot, o->flags);
		break;
	case OP_MPROTECT:
		snprintf(buf, n, "mprotect(page %u, %u pages, prot %d)", o->page, o->n, o->prot);
		break;
	case OP_MREMAP:
		snprintf(buf, n, "mmap(page %u, %u pages, prot %d, flags %#x) then mremap to page %u, %u pages", o->page,
			 o->n, o->prot, o->flags, o->page2, o->n2);
		break;
	case OP_MRESIZE:
		snprintf(buf, n, "mmap(page %u, %u pages, prot %d, flags %#x) then mremap in place to %u pages", o->page,
			 o->n, o->prot, o->flags, o->n2);
		break;
	case OP_STORE:
		snprintf(buf, n, "store(page %u, %d)", o->page, o->byte);
		break;
	case OP_SNAPSHOT:
		snprintf(buf, n, "snapshot");
		break;
	default:
		snprintf(buf, n, "%s(page %u, %u pages)", op_name(o->kind), o->page, o->n);
	}
}

/* The sequence up to op `last`, for a failure message. */
static void ops_print(char *buf, size_t n, const struct op *ops, int last)
{
	size_t k = 0;

	buf[0] = 0;
	for (int i = 0; i <= last && k + 1 < n; i++) {
		char d[96];
		op_print(d, sizeof(d), &ops[i]);
		k += (size_t)snprintf(buf + k, n - k, "\n      %d: %s", i, d);
	}
}

/* The first difference between two traces, described; 0 when they are the same. */
static int trace_diff(const struct op *ops, const struct trace *nat, const struct trace *g, char *why, size_t n)
{
	char d[160], seq[4096];

	if (g->died_at != -1 || g->len != nat->len) {
		if (g->died_at >= 0 && g->died_at < MAXOPS) {
			ops_print(seq, sizeof(seq), ops, g->died_at);
			snprintf(why, n, "died at op %d of:%s", g->died_at, seq);
		} else {
			snprintf(why, n, "run ended with status code %d after %d words (native %d)", g->died_at, g->len,
				 nat->len);
		}
		return 1;
	}
	for (int i = 0; i < nat->len; i++) {
		if (nat->w[i] == g->w[i])
			continue;
		int op = i / (2 + NPAGES), k = i % (2 + NPAGES);
		op_print(d, sizeof(d), &ops[op]);
		ops_print(seq, sizeof(seq), ops, op);
		if (k < 2)
			snprintf(why, n, "op %d %s: %s %d, native %d", op, d, k ? "errno" : "result", g->w[i], nat->w[i]);
		else
			snprintf(why, n, "after op %d %s: page %d is %s%s byte %d, native %s%s byte %d", op, d, k - 2,
				 g->w[i] & 1 ? "r" : "-", g->w[i] & 2 ? "w" : "-", g->w[i] >> 8, nat->w[i] & 1 ? "r" : "-",
				 nat->w[i] & 2 ? "w" : "-", nat->w[i] >> 8);
		snprintf(why + strlen(why), n - strlen(why), "; the sequence:%s", seq);
		return 1;
	}
	return 0;
}

/* Each sequence in each mode against native: every difference fails the test, the first of each mode named. */
static void model_check(const struct op *ops, int nops, const char *what)
{
	static const enum mode modes[] = { ROOT_ALONE, ROOT_SNAPSHOTS, CHILD_LWC };
	struct trace *nat = shared_trace(), *g = shared_trace();
	char why[8192];

	run_mode(NATIVE, ops, nops, nat);
	cr_assert_eq(nat->died_at, -1, "%s: the native run itself failed (%d)", what, nat->died_at);
	for (unsigned m = 0; m < sizeof(modes) / sizeof(modes[0]); m++) {
		run_mode(modes[m], ops, nops, g);
		cr_expect(!trace_diff(ops, nat, g, why, sizeof(why)), "%s, in %s: %s", what, mode_name(modes[m]), why);
	}
	munmap(nat, sizeof(*nat));
	munmap(g, sizeof(*g));
}

/*
 * Every protection to every other, over memory born with the first: mmap(from), a store where
 * it can, a snapshot (in the modes that take them), mprotect(to), a store where it can,
 * mprotect(from) again. 16 KiB and 8 MiB (whole leaf tables), with and without MAP_NORESERVE
 * and MAP_STACK. glibc makes thread stacks this way (PROT_NONE, then read-write).
 */
Test(mem_model, every_protection_to_every_other, .timeout = 900)
{
	static const unsigned sizes[] = { 4, NPAGES };
	char what[128];

	for (unsigned f = 0; f < 4; f++)
		for (unsigned from = 0; from < 4; from++)
			for (unsigned to = 0; to < 4; to++) {
				unsigned sz = sizes[(from + to + f) % 2];
				struct op ops[] = {
					{ .kind = OP_MMAP, .page = 0, .n = sz, .prot = prots[from], .flags = xflags[f] },
					{ .kind = OP_STORE, .page = 1, .byte = 0x11 },
					{ .kind = OP_SNAPSHOT },
					{ .kind = OP_MPROTECT, .page = 0, .n = sz, .prot = prots[to] },
					{ .kind = OP_STORE, .page = 1, .byte = 0x22 },
					{ .kind = OP_STORE, .page = sz - 1, .byte = 0x33 },
					{ .kind = OP_MPROTECT, .page = 1, .n = 1, .prot = prots[from] },
					{ .kind = OP_STORE, .page = 0, .byte = 0x44 },
				};
				snprintf(what, sizeof(what), "prot %d -> %d, %u pages, flags %#x", prots[from], prots[to], sz,
					 xflags[f]);
				model_check(ops, (int)(sizeof(ops) / sizeof(ops[0])), what);
			}
}

/* The same memory, born PROT_NONE, 8 MiB big: glibc's thread stack and jemalloc's reservations. */
Test(mem_model, large_prot_none_reservation_made_usable, .timeout = 300)
{
	size_t len = 8UL << 20;
	struct lwc_msg in;

	ENTER();
	int other = lwc_create(NULL, 0, 0, &in);
	if (other == LWC_SWITCHED)
		lwc_switch_discard(in.src, NULL, 0);
	cr_assert_geq(other, 0);
	char *p = mmap(NULL, len + PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
	cr_assert_neq(p, MAP_FAILED);
	cr_assert_eq(mprotect(p + PG, len, PROT_READ | PROT_WRITE), 0);
	for (size_t o = PG; o < len + PG; o += 64 * PG)
		p[o] = (char)o;
	p[len + PG - 1] = 7;
	for (size_t o = PG; o < len + PG; o += 64 * PG)
		cr_assert_eq(p[o], (char)o);
	cr_assert_eq(p[len + PG - 1], 7);
	/* the guard page stays out of reach of the kernel as of the CPU */
	cr_assert_eq(write(1, p, 1), -1);
	cr_assert_eq(errno, EFAULT);
	cr_assert_eq(munmap(p, len + PG), 0);
	/* in a child too, which holds no snapshot of it */
	int c = lwc_create(NULL, 0, 0, &in);
	if (c == LWC_SWITCHED) {
		char *q = mmap(NULL, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		long ok = q != MAP_FAILED && mprotect(q, len, PROT_READ | PROT_WRITE) == 0;
		if (ok) {
			q[0] = 1;
			q[len - 1] = 2;
			ok = q[0] == 1 && q[len - 1] == 2 && munmap(q, len) == 0;
		}
		lwc_switch(in.src, &ok, 1, &in);
	}
	cr_assert_geq(c, 0);
	cr_assert_eq(lwc_switch(c, NULL, 0, &in), LWC_SWITCHED);
	cr_expect_eq(in.args[0], 1, "a child's PROT_NONE reservation made read-write");
}

/* pthread_create after lwc_create makes its stack this way (and fails cleanly, until threads). */
static void *thread_fn(void *arg)
{
	return arg;
}

Test(mem_model, pthread_create_after_lwc_create_does_not_crash, .timeout = 120)
{
	struct lwc_msg in;
	pthread_t t;

	ENTER();
	int c = lwc_create(NULL, 0, 0, &in);
	if (c == LWC_SWITCHED)
		lwc_switch_discard(in.src, NULL, 0);
	cr_assert_geq(c, 0);
	int r = pthread_create(&t, NULL, thread_fn, NULL);
	if (r == 0) {
		void *ret = (void *)1;
		cr_expect_eq(pthread_join(t, &ret), 0);
		cr_expect_eq(ret, NULL);
	} else {
		cr_expect(r == EAGAIN || r == ENOSYS, "pthread_create: %s", strerror(r));
	}
}

/* Random sequences: holes inside ranges, snapshots half-way, stores, moves. */
Test(mem_model, random_sequences_match_linux, .timeout = 900)
{
	struct op ops[MAXOPS];
	char what[64];
	/* 40 in the suite (every configuration); more on demand: VMLWC_MODEL_SEQUENCES=N */
	int nseq = getenv("VMLWC_MODEL_SEQUENCES") ? atoi(getenv("VMLWC_MODEL_SEQUENCES")) : 40;

	for (int s = 1; s <= nseq; s++) {
		int n = ops_make((uint64_t)s, ops, 24, 1);
		snprintf(what, sizeof(what), "sequence %d", s);
		model_check(ops, n, what);
	}
}
