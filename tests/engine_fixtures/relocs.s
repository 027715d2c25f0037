# Every relocation kind patch_link handles, one site each (tests/test_engine_patch_link.py).
# The sites are plain words: the test reads back what the link wrote, nothing runs.
# Undefined names are given to the linker by a fake Executable: exe_func, exe_data and
# the thread-local ext_tls live in the executable; libc_func and libc_data do not (imports).

        .section .text.sites,"ax",@progbits
        .globl  sites
        .type   sites,@function
sites:
s_64:           .reloc ., R_X86_64_64, exe_func+16
                .quad 0
s_pc32:         .reloc ., R_X86_64_PC32, exe_data-4
                .long 0
s_plt32:        .reloc ., R_X86_64_PLT32, exe_func-4
                .long 0
s_plt32_local:  .reloc ., R_X86_64_PLT32, helper-4
                .long 0
s_plt32_import: .reloc ., R_X86_64_PLT32, libc_func-4
                .long 0
s_pc32_import:  .reloc ., R_X86_64_PC32, libc_func-4
                .long 0
s_gotpcrel:     .reloc ., R_X86_64_GOTPCREL, exe_data-4
                .long 0
s_gotpcrelx:    .reloc ., R_X86_64_GOTPCRELX, exe_func-4
                .long 0
s_rex_gotpcrelx: .reloc ., R_X86_64_REX_GOTPCRELX, exe_data-4
                .long 0
s_got_import:   .reloc ., R_X86_64_REX_GOTPCRELX, libc_data-4
                .long 0
s_32:           .reloc ., R_X86_64_32, exe_data+8
                .long 0
s_32s:          .reloc ., R_X86_64_32S, exe_data-0x1000000
                .long 0
s_pc64:         .reloc ., R_X86_64_PC64, exe_func+2
                .quad 0
s_tpoff32:      .reloc ., R_X86_64_TPOFF32, ext_tls+4
                .long 0
s_tpoff32_own:  .reloc ., R_X86_64_TPOFF32, own_tls
                .long 0
s_gottpoff:     .reloc ., R_X86_64_GOTTPOFF, ext_tls-4
                .long 0
s_tlsgd:        .reloc ., R_X86_64_TLSGD, own_tls-4
                .long 0
s_tlsld:        .reloc ., R_X86_64_TLSLD, own_tls-4
                .long 0
s_dtpoff32:     .reloc ., R_X86_64_DTPOFF32, own_tls+2
                .long 0
s_dtpoff64:     .reloc ., R_X86_64_DTPOFF64, ext_tls+8
                .quad 0
s_rodata:       .reloc ., R_X86_64_PC32, message-4
                .long 0
s_new_static:   .reloc ., R_X86_64_PC32, new_counter-4
                .long 0
s_old_static:   .reloc ., R_X86_64_PC32, old_counter-4
                .long 0
s_weak:         .reloc ., R_X86_64_64, maybe_missing
                .quad 0
        .size   sites, .-sites

        .section .text.helper,"ax",@progbits
        .globl  helper
        .type   helper,@function
helper:
        movl    $1, %eax
        ret
        .size   helper, .-helper

        .section .rodata.message,"a",@progbits
message:
        .ascii  "hello from the patch"

        .section .data.new_counter,"aw",@progbits
        .p2align 3
        .globl  new_counter
        .type   new_counter,@object
new_counter:
        .quad   0x1122334455667788
        .size   new_counter, 8

        .section .data.old_counter,"aw",@progbits
        .p2align 3
        .globl  old_counter
        .type   old_counter,@object
old_counter:
        .quad   42
        .size   old_counter, 8

        # An import stored in writable data: the runtime fills it with dlsym.
        .section .data.rel.ro.table,"aw",@progbits
        .p2align 3
        .globl  table
table:
        .quad   libc_func
        .quad   helper

        .section .tbss.own_tls,"awT",@nobits
        .p2align 3
        .globl  own_tls
        .type   own_tls,@object
own_tls:
        .zero   8
        .size   own_tls, 8

        .type   ext_tls,@tls_object
        .weak   maybe_missing
