/* Packet capture filters: a tcpdump expression compiled by libpcap into classic BPF,
 * converted to DPDK's eBPF (rte_bpf_convert), loaded (and JIT-compiled where DPDK can)
 * and run by the workers on the frames' mbufs.
 *
 * A header of its own because libpcap's <pcap/bpf.h> and DPDK's <bpf_def.h> define
 * the same macros: rte_bpf.h is not included anywhere in rlb, the five functions used
 * are declared here as DPDK 22.11 defines them (rte_bpf_convert is experimental there;
 * declared without the attribute, it needs no ALLOW_EXPERIMENTAL_API). */
#ifndef RLB_CAPTURE_H
#define RLB_CAPTURE_H
#include <stdint.h>
#include <stdio.h>
#include <pcap/pcap.h>
#include <rte_errno.h>
#include <rte_malloc.h>

struct rte_bpf;
struct rte_bpf_prm;
struct rte_bpf_jit { uint64_t (*func)(void *); size_t sz; };
struct rte_bpf_prm *rte_bpf_convert(const struct bpf_program *prog);
struct rte_bpf *rte_bpf_load(const struct rte_bpf_prm *prm);
void rte_bpf_destroy(struct rte_bpf *bpf);
uint64_t rte_bpf_exec(const struct rte_bpf *bpf, void *ctx);
int rte_bpf_get_jit(const struct rte_bpf *bpf, struct rte_bpf_jit *jit);

typedef uint64_t (*rlb_bpf_fn)(void *);

/* expr compiled for Ethernet frames; NULL and libpcap's message in err if it is not a
 * filter. *jit: the native code, or NULL (then rte_bpf_exec runs it). */
static inline struct rte_bpf *rlb_bpf_compile(const char *expr, char *err, size_t errlen,
                                              rlb_bpf_fn *jit)
{
    struct bpf_program prog;
    struct rte_bpf_prm *prm;
    struct rte_bpf *bpf;
    struct rte_bpf_jit j = {0};
    pcap_t *p = pcap_open_dead(DLT_EN10MB, 65535);

    *jit = NULL;
    if (p == NULL) {
        snprintf(err, errlen, "libpcap cannot compile filters here");
        return NULL;
    }
    if (pcap_compile(p, &prog, expr, 1, PCAP_NETMASK_UNKNOWN) != 0) {
        snprintf(err, errlen, "%s", pcap_geterr(p));
        pcap_close(p);
        return NULL;
    }
    prm = rte_bpf_convert(&prog);
    pcap_freecode(&prog);
    pcap_close(p);
    if (prm == NULL) {
        snprintf(err, errlen, "DPDK cannot convert the filter (rte_bpf_convert: %s)",
                 rte_strerror(rte_errno));
        return NULL;
    }
    bpf = rte_bpf_load(prm);
    rte_free(prm);
    if (bpf == NULL) {
        snprintf(err, errlen, "DPDK cannot load the filter (rte_bpf_load: %s)",
                 rte_strerror(rte_errno));
        return NULL;
    }
    if (rte_bpf_get_jit(bpf, &j) == 0 && j.func != NULL)
        *jit = j.func;
    return bpf;
}

static inline uint64_t rlb_bpf_run(const struct rte_bpf *bpf, rlb_bpf_fn jit, void *m)
{
    return jit != NULL ? jit(m) : rte_bpf_exec(bpf, m);
}

static inline void rlb_add64(uint64_t *p, uint64_t v) { __atomic_fetch_add(p, v, __ATOMIC_RELAXED); }
#endif
