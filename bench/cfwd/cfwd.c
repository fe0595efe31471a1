/*
 * cfwd: the smallest useful DPDK IPv4 forwarder, the reference for bench/forward.py.
 *
 * One worker lcore busy-polls port 0, and for each IPv4 packet: drops it if its
 * TTL would expire, decrements the TTL with an incremental checksum update
 * (RFC 1624, as Linux's ip_decrease_ttl), writes dst MAC = --dst-mac and
 * src MAC = port 1's, and sends it on port 1 (what tx refuses is freed).
 * Anything else is freed. No routing lookup, no ARP: it is the floor for what a
 * DPDK L3 forwarder on these ports costs.
 *
 *   cfwd EAL-ARGS -- --dst-mac 02:00:00:00:00:02 [--burst 32] [--mbufs 8191]
 *
 * --mbufs sizes the packet pool: a pcap port with infinite_rx=1 (bench/cycles.py) keeps
 * its whole file in mbufs of this pool.
 *
 * SIGINT/SIGTERM stop it: the worker leaves its loop, ports are stopped and
 * closed, EAL cleaned up, and one JSON line of counters is printed on stdout.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_ether.h>
#include <rte_ip.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_mbuf.h>

#define MAX_BURST 256
#define NB_MBUF 8191
#define NB_DESC 1024

static volatile int quit;
static struct rte_ether_addr dst_mac, src_mac;
static unsigned burst = 32;
static unsigned nb_mbuf = NB_MBUF;

static struct {
	uint64_t rx, tx, tx_refused, not_ipv4, ttl_expired, polls, empty_polls;
} st;

static void on_signal(int sig)
{
	(void)sig;
	quit = 1;
}

static inline int forward_one(struct rte_mbuf *m)
{
	struct rte_ether_hdr *eh = rte_pktmbuf_mtod(m, struct rte_ether_hdr *);
	struct rte_ipv4_hdr *ip;
	uint32_t check;

	if (eh->ether_type != rte_cpu_to_be_16(RTE_ETHER_TYPE_IPV4) ||
	    rte_pktmbuf_data_len(m) < sizeof(*eh) + sizeof(*ip)) {
		st.not_ipv4++;
		return 0;
	}
	ip = (struct rte_ipv4_hdr *)(eh + 1);
	if (ip->time_to_live <= 1) {
		st.ttl_expired++;
		return 0;
	}
	/* TTL is the high byte of a 16-bit word: -1 on it is +0x0100 on the sum */
	check = ip->hdr_checksum;
	check += rte_cpu_to_be_16(0x0100);
	ip->hdr_checksum = (uint16_t)(check + (check >= 0xFFFF));
	ip->time_to_live--;
	rte_ether_addr_copy(&dst_mac, &eh->dst_addr);
	rte_ether_addr_copy(&src_mac, &eh->src_addr);
	return 1;
}

static int worker(void *arg)
{
	struct rte_mbuf *in[MAX_BURST], *out[MAX_BURST];
	uint16_t n, i, k, sent;

	(void)arg;
	while (!quit) {
		n = rte_eth_rx_burst(0, 0, in, burst);
		st.polls++;
		if (n == 0) {
			st.empty_polls++;
			continue;
		}
		st.rx += n;
		for (i = 0, k = 0; i < n; i++) {
			if (forward_one(in[i]))
				out[k++] = in[i];
			else
				rte_pktmbuf_free(in[i]);
		}
		if (k == 0)
			continue;
		sent = rte_eth_tx_burst(1, 0, out, k);
		st.tx += sent;
		if (sent < k) {
			st.tx_refused += k - sent;
			rte_pktmbuf_free_bulk(&out[sent], k - sent);
		}
	}
	return 0;
}

static int port_init(uint16_t port, struct rte_mempool *pool)
{
	struct rte_eth_conf conf;
	uint16_t nrx = NB_DESC, ntx = NB_DESC;
	int rc, sock = rte_eth_dev_socket_id(port);

	if (sock < 0)
		sock = 0;
	memset(&conf, 0, sizeof(conf));
	if ((rc = rte_eth_dev_configure(port, 1, 1, &conf)) < 0)
		return rc;
	if ((rc = rte_eth_dev_adjust_nb_rx_tx_desc(port, &nrx, &ntx)) < 0)
		return rc;
	if ((rc = rte_eth_rx_queue_setup(port, 0, nrx, sock, NULL, pool)) < 0)
		return rc;
	if ((rc = rte_eth_tx_queue_setup(port, 0, ntx, sock, NULL)) < 0)
		return rc;
	if ((rc = rte_eth_dev_start(port)) < 0)
		return rc;
	rte_eth_promiscuous_enable(port);	/* best effort */
	return 0;
}

static void print_port(const char *name, uint16_t port)
{
	struct rte_eth_stats s;

	memset(&s, 0, sizeof(s));
	rte_eth_stats_get(port, &s);
	printf("\"%s\": {\"ipackets\": %" PRIu64 ", \"opackets\": %" PRIu64
	       ", \"imissed\": %" PRIu64 ", \"ierrors\": %" PRIu64 ", \"oerrors\": %" PRIu64
	       ", \"rx_nombuf\": %" PRIu64 "}",
	       name, s.ipackets, s.opackets, s.imissed, s.ierrors, s.oerrors, s.rx_nombuf);
}

static void usage(const char *prog)
{
	fprintf(stderr, "usage: %s EAL-ARGS -- --dst-mac XX:XX:XX:XX:XX:XX [--burst N] "
		"[--mbufs N]\n", prog);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"dst-mac", required_argument, NULL, 'd'},
		{"burst", required_argument, NULL, 'b'},
		{"mbufs", required_argument, NULL, 'm'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	struct rte_mempool *pool;
	unsigned lcore, wlcore = RTE_MAX_LCORE;
	int rc, c, have_mac = 0;
	uint16_t port;

	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	rc = rte_eal_init(argc, argv);
	if (rc < 0) {
		fprintf(stderr, "cfwd: EAL init failed: %s\n", rte_strerror(rte_errno));
		return 1;
	}
	argc -= rc;
	argv += rc;
	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			if (rte_ether_unformat_addr(optarg, &dst_mac) < 0) {
				fprintf(stderr, "cfwd: bad MAC %s\n", optarg);
				goto fail;
			}
			have_mac = 1;
			break;
		case 'b':
			burst = (unsigned)atoi(optarg);
			if (burst < 1 || burst > MAX_BURST) {
				fprintf(stderr, "cfwd: --burst must be 1..%d\n", MAX_BURST);
				goto fail;
			}
			break;
		case 'm':
			nb_mbuf = (unsigned)strtoul(optarg, NULL, 10);
			if (nb_mbuf < 1024) {
				fprintf(stderr, "cfwd: --mbufs must be at least 1024\n");
				goto fail;
			}
			break;
		default:
			usage("cfwd");
			goto fail;
		}
	}
	if (!have_mac) {
		usage("cfwd");
		goto fail;
	}
	if (rte_eth_dev_count_avail() < 2) {
		fprintf(stderr, "cfwd: need 2 ports, have %u\n", rte_eth_dev_count_avail());
		goto fail;
	}
	RTE_LCORE_FOREACH_WORKER(lcore) {
		wlcore = lcore;
		break;
	}
	if (wlcore == RTE_MAX_LCORE) {
		fprintf(stderr, "cfwd: need a worker lcore (e.g. --lcores 0@0,1@1)\n");
		goto fail;
	}
	pool = rte_pktmbuf_pool_create("cfwd_pool", nb_mbuf, 256, 0,
				       RTE_MBUF_DEFAULT_BUF_SIZE, rte_socket_id());
	if (pool == NULL) {
		fprintf(stderr, "cfwd: mbuf pool: %s\n", rte_strerror(rte_errno));
		goto fail;
	}
	for (port = 0; port < 2; port++) {
		if ((rc = port_init(port, pool)) < 0) {
			fprintf(stderr, "cfwd: port %u: %s\n", port, rte_strerror(-rc));
			goto fail_ports;
		}
	}
	rte_eth_macaddr_get(1, &src_mac);
	fprintf(stderr, "cfwd: forwarding port 0 -> port 1 on lcore %u\n", wlcore);
	if (!quit)
		rte_eal_remote_launch(worker, NULL, wlcore);
	/* rte_eal_wait_lcore spins: sleep instead, the generator needs this CPU */
	while (!quit)
		usleep(50 * 1000);
	rte_eal_wait_lcore(wlcore);

	printf("{\"rx\": %" PRIu64 ", \"tx\": %" PRIu64 ", \"tx_refused\": %" PRIu64
	       ", \"not_ipv4\": %" PRIu64 ", \"ttl_expired\": %" PRIu64 ", \"polls\": %" PRIu64
	       ", \"empty_polls\": %" PRIu64 ", ",
	       st.rx, st.tx, st.tx_refused, st.not_ipv4, st.ttl_expired, st.polls, st.empty_polls);
	print_port("port0", 0);
	printf(", ");
	print_port("port1", 1);
	printf("}\n");
	fflush(stdout);
	rc = 0;
	goto stop;
fail_ports:
	rc = 1;
stop:
	for (port = 0; port < 2; port++) {
		rte_eth_dev_stop(port);
		rte_eth_dev_close(port);
	}
	rte_eal_cleanup();
	return rc;
fail:
	rte_eal_cleanup();
	return 1;
}
