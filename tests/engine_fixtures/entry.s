# Old copies of functions for tests/test_engine_entry_jumps.py: one an entry jump may
# overwrite, one whose loop head lies inside its first 5 bytes.

        .section .text.clean,"ax",@progbits
        .globl  clean
        .type   clean,@function
clean:
        movl    $1, %eax
        addl    %edi, %eax
        ret
        .size   clean, .-clean

        .section .text.spin,"ax",@progbits
        .globl  spin
        .type   spin,@function
spin:
        xorl    %eax, %eax
1:      incq    %rax
        cmpq    %rdi, %rax
        jb      1b
        ret
        .size   spin, .-spin
