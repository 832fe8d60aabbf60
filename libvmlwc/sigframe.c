/*
 * Linux x86-64 signal frames in guest memory (the layout of arch/x86/kernel/signal_64.c and
 * fpu/signal.c): built for a handler, checked and undone by rt_sigreturn. Pure functions over a
 * register set and the guest's memory, reached only through ua_copy_in/ua_copy_out. No malloc,
 * no stdio, no state of its own: async-signal-safe.
 */
#include <errno.h>
#include <string.h>
#include <asm/sigcontext.h> /* the uapi struct sigcontext and struct _fpx_sw_bytes, checked below */

#include "base.h"
#include "sigframe.h"
#include "sigtab.h"
#include "uaccess.h"

/* struct sigaction flags and sigaltstack flags, as the x86-64 kernel ABI has them */
#define K_SA_SIGINFO 0x00000004UL
#define K_SA_ONSTACK 0x08000000UL
#define K_SA_RESTORER 0x04000000UL
#define K_SS_ONSTACK 1
#define K_SS_DISABLE 2
#define K_SS_AUTODISARM (1U << 31)
#define K_MINSIGSTKSZ 2048UL
#define K_SIGKILL 9
#define K_SIGSTOP 19

/* uc_flags (asm/ucontext.h, which cannot be included beside glibc's headers) */
#define UC_FP_XSTATE 0x1UL
#define UC_SIGCONTEXT_SS 0x2UL
#define UC_STRICT_RESTORE_SS 0x4UL

/* RFLAGS */
#define F_CF 0x1UL
#define F_FIXED1 0x2UL /* bit 1, always set */
#define F_PF 0x4UL
#define F_AF 0x10UL
#define F_ZF 0x40UL
#define F_SF 0x80UL
#define F_TF 0x100UL
#define F_IF 0x200UL
#define F_DF 0x400UL
#define F_OF 0x800UL
#define F_NT 0x4000UL
#define F_RF 0x10000UL
#define F_AC 0x40000UL
#define F_ID 0x200000UL
/* what rt_sigreturn takes from the frame (Linux's FIX_EFLAGS, arch/x86/include/asm/sighandling.h) */
#define FIX_EFLAGS (F_AC | F_OF | F_DF | F_TF | F_SF | F_ZF | F_AF | F_PF | F_CF | F_RF)

/* XSAVE image: the legacy (FXSAVE) region, the header, the components from CPUID 0xD */
#define XF_FP 0x1UL
#define XF_SSE 0x2UL
#define XF_YMM 0x4UL
#define XF_FPSSE (XF_FP | XF_SSE)
#define X_MXCSR 24
#define X_MXCSR_MASK 28
#define X_ST 32
#define X_XMM 160
#define X_RSVD 416     /* 416..463: reserved, the XSAVE instructions leave them alone */
#define X_SW 464       /* 464..511: software-available, struct _fpx_sw_bytes */
#define X_HDR 512      /* xstate_bv, xcomp_bv, reserved */
#define X_LEGACY 512
#define X_MIN 576      /* legacy region and header */
#define FCW_INIT 0x37f
#define MXCSR_INIT 0x1f80

/* The frame, field for field as the uapi headers define it (checked against them below). */
struct frame_sigcontext { /* struct sigcontext, x86-64 */
	uint64_t r8, r9, r10, r11, r12, r13, r14, r15;
	uint64_t rdi, rsi, rbp, rbx, rdx, rax, rcx, rsp, rip;
	uint64_t eflags;
	uint16_t cs, gs, fs, ss;
	uint64_t err, trapno, oldmask, cr2;
	uint64_t fpstate; /* a guest address */
	uint64_t reserved1[8];
};
struct frame_stack { /* stack_t */
	uint64_t ss_sp;
	int32_t ss_flags;
	uint32_t pad;
	uint64_t ss_size;
};
struct frame_ucontext { /* struct ucontext (asm-generic/ucontext.h), the kernel's 64-bit sigset_t */
	uint64_t uc_flags;
	uint64_t uc_link;
	struct frame_stack uc_stack;
	struct frame_sigcontext uc_mcontext;
	uint64_t uc_sigmask;
};
struct frame_head { /* struct rt_sigframe up to info; the 128-byte siginfo follows */
	uint64_t pretcode;
	struct frame_ucontext uc;
};
struct frame_sw { /* struct _fpx_sw_bytes */
	uint32_t magic1, extended_size;
	uint64_t xfeatures;
	uint32_t xstate_size;
	uint32_t padding[7];
};

#define SC_AT(f, o) _Static_assert(offsetof(struct frame_sigcontext, f) == offsetof(struct sigcontext, f) && \
				   offsetof(struct sigcontext, f) == (o), "sigcontext." #f)
SC_AT(r8, 0); SC_AT(r15, 56); SC_AT(rdi, 64); SC_AT(rsi, 72); SC_AT(rbp, 80); SC_AT(rbx, 88);
SC_AT(rdx, 96); SC_AT(rax, 104); SC_AT(rcx, 112); SC_AT(rsp, 120); SC_AT(rip, 128);
SC_AT(eflags, 136); SC_AT(cs, 144); SC_AT(gs, 146); SC_AT(fs, 148); SC_AT(ss, 150);
SC_AT(err, 152); SC_AT(trapno, 160); SC_AT(oldmask, 168); SC_AT(cr2, 176); SC_AT(fpstate, 184);
SC_AT(reserved1, 192);
_Static_assert(sizeof(struct frame_sigcontext) == sizeof(struct sigcontext) && sizeof(struct sigcontext) == 256,
	       "sigcontext size");
_Static_assert(offsetof(struct frame_ucontext, uc_stack) == 16 && sizeof(struct frame_stack) == 24 &&
	       offsetof(struct frame_ucontext, uc_mcontext) == 40 && offsetof(struct frame_ucontext, uc_sigmask) == 296 &&
	       sizeof(struct frame_ucontext) == 304, "struct ucontext");
_Static_assert(offsetof(struct frame_head, uc) == SIGFRAME_UC_OFF && sizeof(struct frame_head) == SIGFRAME_INFO_OFF &&
	       SIGFRAME_INFO_OFF + 128 == SIGFRAME_SIZE, "struct rt_sigframe");
_Static_assert(sizeof(struct frame_sw) == sizeof(struct _fpx_sw_bytes) && sizeof(struct frame_sw) == 48 &&
	       offsetof(struct frame_sw, extended_size) == offsetof(struct _fpx_sw_bytes, extended_size) &&
	       offsetof(struct frame_sw, xfeatures) == offsetof(struct _fpx_sw_bytes, xfeatures) &&
	       offsetof(struct frame_sw, xstate_size) == offsetof(struct _fpx_sw_bytes, xstate_size),
	       "struct _fpx_sw_bytes");
_Static_assert(offsetof(struct _fpstate_64, mxcsr) == X_MXCSR && offsetof(struct _fpstate_64, st_space) == X_ST &&
	       offsetof(struct _fpstate_64, xmm_space) == X_XMM && offsetof(struct _fpstate_64, sw_reserved) == X_SW &&
	       sizeof(struct _fpstate_64) == X_LEGACY && offsetof(struct _xstate, xstate_hdr) == X_HDR,
	       "FXSAVE layout");

static void cpuid_0d(uint32_t sub, uint32_t *size, uint32_t *offset)
{
	uint32_t a, b, c, d;

	__asm__ volatile("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(0xd), "c"(sub));
	*size = a;
	*offset = b;
}

size_t sigframe_xstate_size(uint64_t xfeatures)
{
	size_t n = X_MIN;

	if (!xfeatures)
		return X_LEGACY;
	for (unsigned i = 2; i < 64; i++) {
		uint32_t size, off;
		if (!(xfeatures & (1UL << i)))
			continue;
		cpuid_0d(i, &size, &off);
		if (size && off + size > n)
			n = (size_t)off + size;
	}
	return n;
}

/* The MXCSR bits this CPU accepts (Linux's mxcsr_feature_mask: FXSAVE's MXCSR_MASK, 0xffbf when 0). */
static uint32_t mxcsr_mask(void)
{
	uint8_t fx[512] __attribute__((aligned(16)));
	uint32_t m;

	__asm__ volatile("fxsave %0" : "=m"(fx));
	memcpy(&m, fx + X_MXCSR_MASK, 4);
	return m ? m : 0xffbf;
}

/* [a, a + n) lies in the user half (Linux's access_ok: below TASK_SIZE_MAX, no wrap). */
static int user_range(uint64_t a, uint64_t n)
{
	return a + n >= a && a + n <= USER_TOP;
}

/* The thread's alternate stack, as Linux's sas_ss_flags/on_sig_stack/__on_sig_stack see it. */
static int alt_disabled(const struct sigframe_state *s)
{
	return !s->ss_size || (s->ss_flags & ~(int)K_SS_AUTODISARM) == K_SS_DISABLE;
}

static int alt_contains(const struct sigframe_state *s, uint64_t sp)
{
	return sp > s->ss_sp && sp - s->ss_sp <= s->ss_size;
}

static int alt_on(const struct sigframe_state *s, uint64_t sp)
{
	if (s->ss_flags & K_SS_AUTODISARM) /* by construction not on it: Linux lets the signal in */
		return 0;
	return !alt_disabled(s) && alt_contains(s, sp);
}

static int put(struct lwc *l, gva_t dst, const void *src, size_t n)
{
	return n ? ua_copy_out(l, dst, src, n) : 0;
}

/*
 * The fpstate Linux's copy_fpstate_to_sigframe writes: XSAVE's image (standard format, the
 * header cleared first, xstate_bv | FP | SSE), the software bytes, FP_XSTATE_MAGIC2 after it;
 * without XSAVE the 512-byte FXSAVE image, its software bytes still set (save_xstate_epilog
 * writes them whenever FXSR is used), no MAGIC2.
 */
static int put_fpstate(struct lwc *l, gva_t fp, const struct sigframe_state *s, size_t user)
{
	uint8_t leg[X_MIN];
	struct frame_sw sw;
	const uint8_t *img = s->xsave;

	memcpy(leg, img, X_LEGACY);
	memset(leg + X_RSVD, 0, X_SW - X_RSVD);
	memset(&sw, 0, sizeof(sw));
	sw.magic1 = FP_XSTATE_MAGIC1;
	sw.extended_size = (uint32_t)user + FP_XSTATE_MAGIC2_SIZE;
	sw.xfeatures = s->xfeatures;
	sw.xstate_size = (uint32_t)user;
	memcpy(leg + X_SW, &sw, sizeof(sw));
	if (!s->xfeatures)
		return put(l, fp, leg, X_LEGACY);

	uint64_t bv;
	uint32_t magic2 = FP_XSTATE_MAGIC2;
	memcpy(&bv, img + X_HDR, 8);
	bv = (bv & s->xfeatures) | XF_FPSSE;
	memset(leg + X_HDR, 0, X_MIN - X_HDR);
	memcpy(leg + X_HDR, &bv, 8);
	if (put(l, fp, leg, X_MIN) < 0 || put(l, fp + X_MIN, img + X_MIN, user - X_MIN) < 0 ||
	    put(l, fp + user, &magic2, sizeof(magic2)) < 0)
		return -EFAULT;
	return 0;
}

int sigframe_build(struct lwc *l, int sig, const struct ksigaction *ka, const void *info,
		   const struct sigframe_state *s, struct kvm_regs *entry)
{
	size_t user = sigframe_xstate_size(s->xfeatures);
	uint64_t math = s->xfeatures ? user + FP_XSTATE_MAGIC2_SIZE : user;
	uint64_t sp = s->regs.rsp, fp, frame;
	int nested, entering = 0;
	struct frame_head h;
	struct frame_sigcontext *sc = &h.uc.uc_mcontext;

	if (!s->xsave || s->xsave_bytes < user || ((ka->flags & K_SA_SIGINFO) && !info))
		return -ENOBUFS;
	if (!(ka->flags & K_SA_RESTORER)) /* "x86-64 should always use SA_RESTORER" */
		return -EFAULT;

	/* get_sigframe: the red zone, the alternate stack, the fpstate, then the frame */
	nested = alt_on(s, sp);
	sp -= SIGFRAME_REDZONE;
	if ((ka->flags & K_SA_ONSTACK) && !alt_disabled(s) && !alt_on(s, sp)) {
		sp = s->ss_sp + s->ss_size;
		entering = 1;
	}
	fp = (sp - math) & ~63UL;
	frame = ((fp - SIGFRAME_SIZE) & ~15UL) - 8;
	if ((nested || entering) && !alt_contains(s, frame))
		return -EFAULT; /* it would overflow the alternate stack: Linux gives an always-bad address */
	if (!user_range(fp, math) || !user_range(frame, SIGFRAME_SIZE))
		return -EFAULT;
	if (put_fpstate(l, fp, s, user) < 0)
		return -EFAULT;

	memset(&h, 0, sizeof(h));
	h.pretcode = ka->restorer;
	h.uc.uc_flags = UC_SIGCONTEXT_SS | UC_STRICT_RESTORE_SS | (s->xfeatures ? UC_FP_XSTATE : 0);
	h.uc.uc_stack.ss_sp = s->ss_sp;
	h.uc.uc_stack.ss_flags = s->ss_flags;
	h.uc.uc_stack.ss_size = s->ss_size;
	sc->r8 = s->regs.r8;
	sc->r9 = s->regs.r9;
	sc->r10 = s->regs.r10;
	sc->r11 = s->regs.r11;
	sc->r12 = s->regs.r12;
	sc->r13 = s->regs.r13;
	sc->r14 = s->regs.r14;
	sc->r15 = s->regs.r15;
	sc->rdi = s->regs.rdi;
	sc->rsi = s->regs.rsi;
	sc->rbp = s->regs.rbp;
	sc->rbx = s->regs.rbx;
	sc->rdx = s->regs.rdx;
	sc->rax = s->regs.rax;
	sc->rcx = s->regs.rcx;
	sc->rsp = s->regs.rsp;
	sc->rip = s->regs.rip;
	sc->eflags = s->regs.rflags;
	sc->cs = VMLWC_UCS;
	sc->ss = VMLWC_UDS;
	sc->err = s->err;
	sc->trapno = s->trapno;
	sc->oldmask = s->sigmask;
	sc->cr2 = s->cr2;
	sc->fpstate = fp;
	h.uc.uc_sigmask = s->sigmask;
	if (put(l, frame, &h, sizeof(h)) < 0)
		return -EFAULT;
	if ((ka->flags & K_SA_SIGINFO) && put(l, frame + SIGFRAME_INFO_OFF, info, 128) < 0)
		return -EFAULT;

	*entry = s->regs;
	entry->rip = ka->handler;
	entry->rsp = frame;
	entry->rdi = (uint64_t)sig;
	entry->rsi = frame + SIGFRAME_INFO_OFF;
	entry->rdx = frame + SIGFRAME_UC_OFF;
	entry->rax = 0; /* in case the handler was declared without a prototype */
	entry->rflags &= ~(F_DF | F_RF | F_TF); /* handle_signal */
	return 0;
}

static void put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

/* The vector state after fpu__clear_user_states: every component init. */
static void init_image(struct sigframe_state *out, uint32_t mmask)
{
	uint8_t *img = out->xsave;
	uint64_t bv = XF_FPSSE;

	memset(img, 0, out->xsave_bytes);
	img[0] = FCW_INIT & 0xff;
	img[1] = FCW_INIT >> 8;
	put32(img + X_MXCSR, MXCSR_INIT);
	put32(img + X_MXCSR_MASK, mmask);
	memcpy(img + X_HDR, &bv, 8);
}

/*
 * The fpstate as Linux's fpu__restore_sig takes it back for a 64-bit frame: with XSAVE, the
 * software bytes decide between XRSTOR of the features they name (magic1 and magic2 right, sizes
 * in range) and FXRSTOR of the legacy region (anything else); what the instruction would refuse
 * with a #GP (alignment, MXCSR reserved bits, xstate_bv outside XCR0, header bytes 8..23) or
 * cannot read fails the call; components not loaded are init. Fills out->xsave; 0 or -1.
 */
static int restore_fp(struct lwc *l, uint64_t buf, struct sigframe_state *out, size_t user, uint32_t mmask)
{
	uint64_t xf = out->xfeatures, rfbm, loaded, bv = 0, hdr[8];
	uint8_t leg[X_LEGACY], *img = out->xsave;
	uint32_t mxcsr = MXCSR_INIT;
	int fx_only = 1, mx_frame;

	init_image(out, mmask);
	if (!buf)
		return 0; /* no fpstate: the init state */
	if (!user_range(buf, xf ? user + FP_XSTATE_MAGIC2_SIZE : user))
		return -1;
	rfbm = XF_FPSSE;
	if (xf) {
		struct frame_sw sw;
		uint32_t magic2;
		if (ua_copy_in(l, &sw, buf + X_SW, sizeof(sw)) < 0)
			return -1;
		fx_only = sw.magic1 != FP_XSTATE_MAGIC1 || sw.xstate_size < X_MIN || sw.xstate_size > user ||
			  sw.xstate_size > sw.extended_size;
		if (!fx_only) {
			if (ua_copy_in(l, &magic2, buf + sw.xstate_size, sizeof(magic2)) < 0)
				return -1;
			fx_only = magic2 != FP_XSTATE_MAGIC2;
		}
		rfbm = (fx_only ? XF_FPSSE : sw.xfeatures) & xf;
	}
	if (fx_only) { /* FXRSTOR: a 16-byte aligned area, a valid MXCSR */
		if ((buf & 15) || ua_copy_in(l, leg, buf, X_LEGACY) < 0)
			return -1;
		loaded = XF_FPSSE;
		mx_frame = 1;
	} else { /* XRSTOR, standard form, RFBM = rfbm */
		if ((buf & 63) || ua_copy_in(l, hdr, buf + X_HDR, sizeof(hdr)) < 0)
			return -1;
		bv = hdr[0];
		if ((bv & ~xf) || hdr[1] || hdr[2]) /* the #GP checks; a compacted image (xcomp_bv[63]) is refused too */
			return -1;
		if ((rfbm & (XF_FPSSE | XF_YMM)) && ua_copy_in(l, leg, buf, X_LEGACY) < 0)
			return -1;
		loaded = rfbm & bv;
		mx_frame = !!(rfbm & (XF_SSE | XF_YMM)); /* the standard form loads MXCSR for either */
	}
	if (mx_frame) {
		memcpy(&mxcsr, leg + X_MXCSR, 4);
		if (mxcsr & ~mmask)
			return -1;
	}
	for (unsigned i = 2; i < 64; i++) {
		uint32_t size, off;
		if (!(loaded & (1UL << i)))
			continue;
		cpuid_0d(i, &size, &off);
		if (!size || off + size > user) /* a component XCR0 has but CPUID cannot place */
			return -1;
		if (ua_copy_in(l, img + off, buf + off, size) < 0)
			return -1;
	}
	if (loaded & XF_FP) {
		memcpy(img, leg, X_MXCSR);
		memcpy(img + X_ST, leg + X_ST, X_XMM - X_ST);
	}
	if (loaded & XF_SSE)
		memcpy(img + X_XMM, leg + X_XMM, X_RSVD - X_XMM);
	put32(img + X_MXCSR, mxcsr);
	bv = loaded | XF_FPSSE; /* FP and SSE always present: init values where not loaded */
	memcpy(img + X_HDR, &bv, 8);
	return 0;
}

/* Linux's restore_altstack: do_sigaltstack with the frame's uc_stack, every refusal ignored. */
static void restore_altstack(struct sigframe_state *out, const struct frame_stack *st, uint64_t sp)
{
	int flags = st->ss_flags, mode = flags & ~(int)K_SS_AUTODISARM;
	uint64_t ss_sp = st->ss_sp, ss_size = st->ss_size;

	if (alt_on(out, sp)) /* EPERM: not while on the current one */
		return;
	if (mode != 0 && mode != K_SS_ONSTACK && mode != K_SS_DISABLE) /* EINVAL */
		return;
	if (mode == K_SS_DISABLE) {
		ss_sp = 0;
		ss_size = 0;
	} else if (ss_size < K_MINSIGSTKSZ) { /* ENOMEM */
		return;
	}
	out->ss_sp = ss_sp;
	out->ss_size = ss_size;
	out->ss_flags = flags;
}

int sigframe_restore(struct lwc *l, uint64_t rsp, struct sigframe_state *out)
{
	size_t user = sigframe_xstate_size(out->xfeatures);
	uint64_t frame = rsp - 8, in_flags = out->regs.rflags;
	struct frame_ucontext uc;
	const struct frame_sigcontext *sc = &uc.uc_mcontext;
	struct kvm_regs *r = &out->regs;
	uint16_t cs, ss;
	int bad_return = 0;

	if (!out->xsave || out->xsave_bytes < user || out->xsave_bytes < X_MIN)
		return -ENOBUFS;
	if (!user_range(frame, SIGFRAME_SIZE) || ua_copy_in(l, &uc, frame + SIGFRAME_UC_OFF, sizeof(uc)) < 0)
		return -EFAULT;

	/* set_current_blocked: SIGKILL and SIGSTOP cannot be blocked */
	out->sigmask = uc.uc_sigmask & ~((1UL << (K_SIGKILL - 1)) | (1UL << (K_SIGSTOP - 1)));

	/* restore_sigcontext */
	r->r8 = sc->r8;
	r->r9 = sc->r9;
	r->r10 = sc->r10;
	r->r11 = sc->r11;
	r->r12 = sc->r12;
	r->r13 = sc->r13;
	r->r14 = sc->r14;
	r->r15 = sc->r15;
	r->rdi = sc->rdi;
	r->rsi = sc->rsi;
	r->rbp = sc->rbp;
	r->rbx = sc->rbx;
	r->rdx = sc->rdx;
	r->rax = sc->rax;
	r->rcx = sc->rcx;
	r->rsp = sc->rsp;
	r->rip = sc->rip;
	/* the frame sets only FIX_EFLAGS; the rest is the syscall's, where ring 3 can have only NT and ID */
	r->rflags = (sc->eflags & FIX_EFLAGS) | (in_flags & (F_NT | F_ID)) | F_IF | F_FIXED1;
	out->cr2 = sc->cr2;
	out->trapno = sc->trapno;
	out->err = sc->err;
	/* cs and ss get RPL 3; ss is fixed up only without UC_STRICT_RESTORE_SS and with a 64-bit cs
	   (force_valid_ss: 0x2b is the only valid ring-3 data segment of the guest's GDT); any other
	   selector faults on the way back to user mode, as Linux's IRET does */
	cs = sc->cs | 3;
	ss = sc->ss | 3;
	if (cs != VMLWC_UCS)
		bad_return = 1;
	if (ss != VMLWC_UDS && ((uc.uc_flags & UC_STRICT_RESTORE_SS) || cs != VMLWC_UCS))
		bad_return = 1;
	out->cs = VMLWC_UCS;
	out->ss = VMLWC_UDS;

	uint32_t mmask = mxcsr_mask();
	if (restore_fp(l, sc->fpstate, out, user, mmask) < 0) {
		init_image(out, mmask); /* fpu__clear_user_states */
		r->rax = 0;             /* badframe: the syscall returns 0 */
		return -EINVAL;
	}
	restore_altstack(out, &uc.uc_stack, r->rsp);
	/* Linux returns with IRET to whatever rip: a kernel-half or non-canonical one faults there.
	   Here the state is never resumed: the caller raises that fault. */
	if (r->rip >= (1UL << 47))
		bad_return = 1;
	return bad_return ? -ERANGE : 0;
}
