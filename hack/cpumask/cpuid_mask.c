/* Make this process and its children see a CPU without some int8 instruction sets.
 *
 * Loaded with LD_PRELOAD by hack/cpumask/run (which says why and how). Linux's
 * ARCH_SET_CPUID (arch_prctl(2); needs the CPU's "cpuid_fault" flag) makes the CPUID
 * instruction fault; the SIGSEGV handler below runs the real CPUID with faulting off,
 * clears the bits CPUID_MASK names, and steps over the instruction. ONNX Runtime's
 * MLAS and numpy pick their kernels from CPUID when they are loaded, after this
 * constructor has run, so they take the paths of the CPU class asked for. Instructions
 * stay executable: the program is only told they are not there. The setting is per
 * thread, inherited by threads and children and reset by execve, when LD_PRELOAD sets
 * it again.
 *
 * CPUID_MASK: "avx512" clears AVX-512 (all of leaf 7's AVX-512 bits), AVX-VNNI and AMX,
 * leaving AVX2 (class x86-avx2); "vnni" clears AVX512-VNNI, AVX-VNNI and AMX, leaving
 * AVX-512BW (class x86-avx512). Bit positions: Intel SDM vol. 2A, CPUID leaf 07H.
 */
#define _GNU_SOURCE
#include <asm/prctl.h>
#include <cpuid.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#define BIT(n) (1u << (n))

/* Leaf 7 subleaf 0: EBX, ECX, EDX; subleaf 1: EAX, EDX. */
static uint32_t clear_b0, clear_c0, clear_d0, clear_a1, clear_d1;

static long set_cpuid(int enabled) { return syscall(SYS_arch_prctl, ARCH_SET_CPUID, enabled); }

static void on_segv(int sig, siginfo_t *info, void *context) {
  (void)info;
  ucontext_t *uc = context;
  greg_t *r = uc->uc_mcontext.gregs;
  const unsigned char *ip = (const unsigned char *)r[REG_RIP];
  if (ip[0] != 0x0f || ip[1] != 0xa2) {
    /* A real fault: let it happen again with the default action. */
    signal(sig, SIG_DFL);
    return;
  }
  uint32_t leaf = (uint32_t)r[REG_RAX], sub = (uint32_t)r[REG_RCX], a, b, c, d;
  set_cpuid(1);
  __cpuid_count(leaf, sub, a, b, c, d);
  set_cpuid(0);
  if (leaf == 7 && sub == 0) {
    b &= ~clear_b0;
    c &= ~clear_c0;
    d &= ~clear_d0;
  } else if (leaf == 7 && sub == 1) {
    a &= ~clear_a1;
    d &= ~clear_d1;
  }
  r[REG_RAX] = a;
  r[REG_RBX] = b;
  r[REG_RCX] = c;
  r[REG_RDX] = d;
  r[REG_RIP] += 2;
}

__attribute__((constructor)) static void cpuid_mask_init(void) {
  const char *mask = getenv("CPUID_MASK");
  if (mask == NULL || *mask == '\0') return;
  /* VNNI and AMX go in every mask: AVX512_VNNI (ECX 11), AMX-BF16/TILE/INT8 (EDX 22, 24,
   * 25), AVX-VNNI (subleaf 1 EAX 4), AVX-VNNI-INT8 (subleaf 1 EDX 4). */
  clear_c0 = BIT(11);
  clear_d0 = BIT(22) | BIT(24) | BIT(25);
  clear_a1 = BIT(4);
  clear_d1 = BIT(4);
  if (strcmp(mask, "avx512") == 0) {
    /* EBX: F 16, DQ 17, IFMA 21, PF 26, ER 27, CD 28, BW 30, VL 31. ECX: VBMI 1, VBMI2 6,
     * BITALG 12, VPOPCNTDQ 14. EDX: 4VNNIW 2, 4FMAPS 3, VP2INTERSECT 8, FP16 23. Subleaf 1
     * EAX: AVX512_BF16 5. */
    clear_b0 |= BIT(16) | BIT(17) | BIT(21) | BIT(26) | BIT(27) | BIT(28) | BIT(30) | BIT(31);
    clear_c0 |= BIT(1) | BIT(6) | BIT(12) | BIT(14);
    clear_d0 |= BIT(2) | BIT(3) | BIT(8) | BIT(23);
    clear_a1 |= BIT(5);
  } else if (strcmp(mask, "vnni") != 0) {
    fprintf(stderr, "cpuid_mask: CPUID_MASK=%s: use avx512 or vnni\n", mask);
    _exit(2);
  }
  struct sigaction action;
  memset(&action, 0, sizeof action);
  action.sa_sigaction = on_segv;
  action.sa_flags = SA_SIGINFO | SA_RESTART;
  sigemptyset(&action.sa_mask);
  if (sigaction(SIGSEGV, &action, NULL) != 0 || set_cpuid(0) != 0) {
    perror("cpuid_mask: this kernel or CPU cannot make CPUID fault (no cpuid_fault flag?)");
    _exit(2);
  }
}
