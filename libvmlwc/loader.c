/* Loads the embedded guest stub ELF into the arena with libelf and resolves its entry points. */
#include <errno.h>
#include <gelf.h>
#include <libelf.h>
#include <string.h>

#include "base.h"
#include "arena.h"
#include "errors.h"
#include "loader.h"
#include "pgtable.h"
#include "state.h"

extern const unsigned char vmlwc_stub_elf_start[], vmlwc_stub_elf_end[];

struct want_sym {
	const char *name;
	uint64_t *dst;
};

static int load_segments(Elf *e, struct vm *vm)
{
	size_t n, i;

	if (elf_getphdrnum(e, &n) != 0)
		return err_set(ENOEXEC, "guest stub: no program headers (%s)", elf_errmsg(-1));
	for (i = 0; i < n; i++) {
		GElf_Phdr ph;
		uint64_t off, len, flags;

		if (!gelf_getphdr(e, (int)i, &ph))
			return err_set(ENOEXEC, "guest stub: bad program header %zu", i);
		if (ph.p_type != PT_LOAD)
			continue;
		if (ph.p_vaddr < VMLWC_STUB_KVA || ph.p_memsz > VMLWC_STUB_MAX ||
		    ph.p_vaddr - VMLWC_STUB_KVA > VMLWC_STUB_MAX - ph.p_memsz ||
		    ph.p_filesz > ph.p_memsz ||
		    ph.p_offset + ph.p_filesz > (size_t)(vmlwc_stub_elf_end - vmlwc_stub_elf_start))
			return err_set(ENOEXEC, "guest stub: segment %zu at %#lx outside the stub window",
				       i, (unsigned long)ph.p_vaddr);
		off = ph.p_vaddr - VMLWC_STUB_KVA;
		memcpy((void *)(vm->arena.base + off), vmlwc_stub_elf_start + ph.p_offset, ph.p_filesz);
		flags = PTE_P | PTE_A;
		if (ph.p_flags & PF_W)
			flags |= PTE_W | PTE_D;
		if (!(ph.p_flags & PF_X))
			flags |= PTE_NX;
		len = PAGE_ALIGN_UP(off + ph.p_memsz) - PAGE_ALIGN_DOWN(off);
		if (pt_kernel_map(PAGE_ALIGN_DOWN(ph.p_vaddr), vm->arena.base + PAGE_ALIGN_DOWN(off),
				  len, flags) < 0)
			return err_set(ENOMEM, "guest stub: cannot map segment %zu", i);
		if (off + ph.p_memsz > vm->stub.size)
			vm->stub.size = off + ph.p_memsz;
	}
	return 0;
}

static int find_symbols(Elf *e, struct want_sym *want, size_t nwant)
{
	Elf_Scn *scn = NULL;
	size_t i, found = 0;

	/* unfound is 0: a second vmlwc_init after a refused one finds them all again */
	for (i = 0; i < nwant; i++)
		*want[i].dst = 0;
	while ((scn = elf_nextscn(e, scn))) {
		GElf_Shdr sh;
		Elf_Data *d;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_SYMTAB)
			continue;
		d = elf_getdata(scn, NULL);
		for (size_t k = 0; d && k < sh.sh_size / sh.sh_entsize; k++) {
			GElf_Sym s;
			const char *name;

			if (!gelf_getsym(d, (int)k, &s))
				continue;
			name = elf_strptr(e, sh.sh_link, s.st_name);
			for (i = 0; name && i < nwant; i++)
				if (!*want[i].dst && strcmp(name, want[i].name) == 0) {
					*want[i].dst = s.st_value;
					found++;
				}
		}
	}
	for (i = 0; i < nwant; i++)
		if (!*want[i].dst)
			return err_set(ENOEXEC, "guest stub: symbol %s missing", want[i].name);
	return found == nwant ? 0 : -1;
}

int loader_load_stub(struct vm *vm)
{
	uint64_t abi = 0;
	struct want_sym want[] = {
		{ "vmlwc_stub_syscall", &vm->stub.syscall },
		{ "vmlwc_stub_cr3_tramp", &vm->stub.cr3_tramp },
		{ "vmlwc_stub_scrub_tramp", &vm->stub.scrub_tramp },
		{ "vmlwc_stub_idt", &vm->stub.idt },
		{ "vmlwc_stub_vectors", &vm->stub.vectors },
		{ "vmlwc_stub_abi_version", &abi },
		{ "vmlwc_stub_pool", &vm->stub.pool_sym },
		{ "vmlwc_stub_cr3_of", &vm->stub.cr3_of_sym },
		{ "vmlwc_stub_pf_host", &vm->stub.pf_host },
		{ "vmlwc_stub_pte_store", &vm->stub.pte_store },
		{ "vmlwc_stub_vec3", &vm->stub.vec3 },
		{ "vmlwc_stub_vec3_cr3", &vm->stub.vec3_cr3 },
		{ "vmlwc_stub_smap", &vm->stub.smap_sym },
		{ "vmlwc_stub_live", &vm->stub.live_sym },
		{ "vmlwc_stub_nlive", &vm->stub.nlive_sym },
	};
	Elf *e;
	GElf_Ehdr eh;
	int r = -1;

	if (elf_version(EV_CURRENT) == EV_NONE)
		return err_set(ENOEXEC, "libelf: %s", elf_errmsg(-1));
	e = elf_memory((char *)vmlwc_stub_elf_start, (size_t)(vmlwc_stub_elf_end - vmlwc_stub_elf_start));
	if (!e)
		return err_set(ENOEXEC, "guest stub: %s", elf_errmsg(-1));
	if (!gelf_getehdr(e, &eh) || eh.e_machine != EM_X86_64 || eh.e_ident[EI_CLASS] != ELFCLASS64) {
		err_set(ENOEXEC, "guest stub: not an x86-64 ELF64 image");
		goto out;
	}
	if (load_segments(e, vm) < 0 || find_symbols(e, want, ARRAY_SIZE(want)) < 0)
		goto out;
	if (*(const uint32_t *)(vm->arena.base + (abi - VMLWC_STUB_KVA)) != VMLWC_ABI_VERSION) {
		err_set(ENOEXEC, "guest stub: ABI version mismatch");
		goto out;
	}
	vm->pool.hdr = (struct vmlwc_pool *)(vm->arena.base + (vm->stub.pool_sym - VMLWC_STUB_KVA));
	vm->stub.cr3_of = (uint64_t *)(vm->arena.base + (vm->stub.cr3_of_sym - VMLWC_STUB_KVA));
	vm->stub.smap = (uint64_t *)(vm->arena.base + (vm->stub.smap_sym - VMLWC_STUB_KVA));
	vm->stub.live = (uint64_t *)(vm->arena.base + (vm->stub.live_sym - VMLWC_STUB_KVA));
	vm->stub.nlive = (uint64_t *)(vm->arena.base + (vm->stub.nlive_sym - VMLWC_STUB_KVA));
	r = 0;
out:
	elf_end(e);
	return r;
}
