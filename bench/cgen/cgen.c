/*
 * cgen: a bounded packet generator for bench/: UDP (forward.py), TCP SYN/ACK (conntable.py).
 *
 * AF_PACKET with a TPACKET_V2 transmit ring and PACKET_QDISC_BYPASS: frames are
 * written once into the ring (one per flow, cycling), and each round marks up to
 * --batch free frames for sending and kicks the kernel with one sendto(). It
 * stops after --seconds or --count packets, or on SIGINT/SIGTERM, whichever
 * comes first, and prints one JSON line: what it queued and for how long.
 *
 *   cgen --iface IF --src-mac M --dst-mac M --src-ip A --dst-ip A
 *        [--size 60] [--flows 8] [--sport 10000] [--dport 9]
 *        [--seconds 10] [--count N] [--batch 256] [--mode ring|mmsg]
 *
 * --mode mmsg sends with sendmmsg() from --batch prebuilt buffers instead of the
 * ring (copied into a linear skb: no page per packet, but a copy from user space).
 * --size is the frame without FCS (60 = a 64-byte frame on the wire).
 *
 * --tcp syn|ack (bench/conntable.py) sends TCP segments instead, one per tuple:
 * packet i comes from --src-ip + i % --src-count, port --sport + (i / --src-count)
 * % --sports, so up to src-count x sports distinct client tuples, each sent once
 * (a second run with --tcp ack sends the same tuples' handshake ACKs). IP and TCP
 * checksums are computed per packet; sendmmsg only. --rate caps the packets per
 * second (0: as fast as possible).
 *
 * --vlan ID (UDP only) puts an 802.1Q tag with that VLAN ID (priority 0) after the MACs:
 * the frame is then --size + 4 bytes (the IP packet stays the same).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define FRAME_SIZE 256
#define BLOCK_SIZE 4096
#define BLOCK_NR 256
#define FRAME_NR (BLOCK_NR * (BLOCK_SIZE / FRAME_SIZE))
#define MAX_SIZE (FRAME_SIZE - TPACKET2_HDRLEN)

static volatile int quit;
static int vlan_id = -1;	/* --vlan: 802.1Q tag on the UDP frames */
static unsigned taglen;		/* 4 with --vlan, else 0 */

static void on_signal(int sig)
{
	(void)sig;
	quit = 1;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int parse_mac(const char *s, uint8_t *mac)
{
	unsigned v[6];
	int i;

	if (sscanf(s, "%x:%x:%x:%x:%x:%x", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]) != 6)
		return -1;
	for (i = 0; i < 6; i++) {
		if (v[i] > 255)
			return -1;
		mac[i] = (uint8_t)v[i];
	}
	return 0;
}

static uint16_t csum16(const void *data, size_t len)
{
	const uint8_t *p = data;
	uint32_t sum = 0;
	size_t i;

	for (i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (len & 1)
		sum += (uint32_t)(p[len - 1] << 8);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return htons((uint16_t)~sum);
}

/* Ethernet [+ 802.1Q] + IPv4 + UDP (checksum 0: none, legal for IPv4) + zero payload;
 * size is the frame without the tag */
static void build(uint8_t *f, unsigned size, const uint8_t *smac, const uint8_t *dmac,
		  struct in_addr sip, struct in_addr dip, uint16_t sport, uint16_t dport)
{
	uint8_t *ip = f + 14 + taglen, *udp = ip + 20;
	unsigned iplen = size - 14;

	memset(f, 0, size + taglen);
	memcpy(f, dmac, 6);
	memcpy(f + 6, smac, 6);
	if (taglen) {
		f[12] = 0x81;
		f[13] = 0x00;
		f[14] = (uint8_t)((vlan_id >> 8) & 0x0f);
		f[15] = (uint8_t)vlan_id;
	}
	f[12 + taglen] = 0x08;
	f[13 + taglen] = 0x00;
	ip[0] = 0x45;
	ip[2] = (uint8_t)(iplen >> 8);
	ip[3] = (uint8_t)iplen;
	ip[6] = 0x40;		/* DF */
	ip[8] = 64;		/* TTL */
	ip[9] = 17;		/* UDP */
	memcpy(ip + 12, &sip, 4);
	memcpy(ip + 16, &dip, 4);
	*(uint16_t *)(ip + 10) = csum16(ip, 20);
	*(uint16_t *)(udp + 0) = htons(sport);
	*(uint16_t *)(udp + 2) = htons(dport);
	*(uint16_t *)(udp + 4) = htons((uint16_t)(iplen - 20));
}

/* Ethernet + IPv4 + TCP (no options, 20 bytes) for client tuple i: SYN or ACK */
static void build_tcp(uint8_t *f, unsigned size, const uint8_t *smac, const uint8_t *dmac,
		      uint32_t sip_h, struct in_addr dip, uint16_t sport, uint16_t dport, int ack)
{
	uint8_t *ip = f + 14, *th = ip + 20;
	uint32_t sip = htonl(sip_h), sum = 0;
	uint16_t ck;
	unsigned k;

	memset(f, 0, size);
	memcpy(f, dmac, 6);
	memcpy(f + 6, smac, 6);
	f[12] = 0x08;
	ip[0] = 0x45;
	ip[3] = 40;		/* total length: 20 + 20 */
	ip[6] = 0x40;		/* DF */
	ip[8] = 64;
	ip[9] = 6;
	memcpy(ip + 12, &sip, 4);
	memcpy(ip + 16, &dip, 4);
	*(uint16_t *)(ip + 10) = csum16(ip, 20);
	*(uint16_t *)(th + 0) = htons(sport);
	*(uint16_t *)(th + 2) = htons(dport);
	*(uint32_t *)(th + 4) = htonl(ack ? 1001u : 1000u);	/* seq */
	*(uint32_t *)(th + 8) = htonl(ack ? 1u : 0u);		/* ack */
	th[12] = 5 << 4;
	th[13] = ack ? 0x10 : 0x02;
	*(uint16_t *)(th + 14) = htons(64240);
	/* checksum over the pseudo header (addresses, protocol, length) and the header */
	for (k = 0; k < 8; k += 2)
		sum += (uint32_t)(ip[12 + k] << 8 | ip[13 + k]);
	sum += 6 + 20;
	for (k = 0; k < 20; k += 2)
		sum += (uint32_t)(th[k] << 8 | th[k + 1]);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	ck = htons((uint16_t)~sum);
	memcpy(th + 16, &ck, 2);
}

static void pace(double t0, uint64_t queued, double rate)
{
	double ahead;

	if (rate <= 0)
		return;
	ahead = queued / rate - (now_s() - t0);
	if (ahead > 0.00005) {
		struct timespec ts = {0, (long)(ahead * 1e9)};
		nanosleep(&ts, NULL);
	}
}

/* one segment per distinct client tuple; partial sendmmsg()s are completed, so every
 * tuple goes out exactly once (unless the run ends first) */
static int send_tcp(int fd, unsigned size, const uint8_t *smac, const uint8_t *dmac,
		    struct in_addr sip, struct in_addr dip, unsigned nsrc, unsigned sport,
		    unsigned nports, unsigned dport, unsigned batch, double seconds,
		    uint64_t count, int ack, double rate)
{
	struct mmsghdr *msgs = calloc(batch, sizeof(*msgs));
	struct iovec *iov = calloc(batch, sizeof(*iov));
	uint8_t *bufs = calloc(batch, 128);
	uint64_t queued = 0, calls = 0, errors = 0, again = 0, i = 0;
	uint64_t tuples = (uint64_t)nsrc * nports;
	double t0 = now_s(), deadline = t0 + seconds;
	uint32_t base = ntohl(sip.s_addr);
	unsigned k, n, off;
	int r;

	if (!msgs || !iov || !bufs)
		return 1;
	if (count > tuples)
		count = tuples;
	for (k = 0; k < batch; k++) {
		iov[k].iov_base = bufs + k * 128;
		iov[k].iov_len = size;
		msgs[k].msg_hdr.msg_iov = &iov[k];
		msgs[k].msg_hdr.msg_iovlen = 1;
	}
	while (!quit && i < count && now_s() < deadline) {
		n = batch;
		if (count - i < n)
			n = (unsigned)(count - i);
		for (k = 0; k < n; k++, i++)
			build_tcp(bufs + k * 128, size, smac, dmac, base + (uint32_t)(i % nsrc), dip,
				  (uint16_t)(sport + (i / nsrc) % nports), (uint16_t)dport, ack);
		off = 0;
		while (off < n && !quit) {
			pace(t0, queued, rate);
			r = sendmmsg(fd, msgs + off, n - off, MSG_DONTWAIT);
			calls++;
			if (r > 0) {
				off += (unsigned)r;
				queued += (uint64_t)r;
			} else if (errno == EAGAIN || errno == ENOBUFS || errno == EINTR) {
				again++;
			} else {
				errors++;
				if (errors > 1000)
					goto out;
			}
			if ((calls & 255) == 0 && now_s() >= deadline + 5)
				goto out;
		}
	}
out:
	printf("{\"queued\": %" PRIu64 ", \"seconds\": %.3f, \"kicks\": %" PRIu64
	       ", \"kick_errors\": %" PRIu64 ", \"again\": %" PRIu64 ", \"tuples\": %" PRIu64
	       ", \"flags\": \"%s\"}\n", queued, now_s() - t0, calls, errors, again, count,
	       ack ? "ack" : "syn");
	return 0;
}

static int send_mmsg(int fd, unsigned size, const uint8_t *smac, const uint8_t *dmac,
		     struct in_addr sip, struct in_addr dip, unsigned flows, unsigned sport,
		     unsigned dport, unsigned batch, double seconds, uint64_t count)
{
	struct mmsghdr *msgs = calloc(batch, sizeof(*msgs));
	struct iovec *iov = calloc(batch, sizeof(*iov));
	uint8_t *bufs = calloc(batch, 128);
	uint64_t queued = 0, calls = 0, errors = 0;
	double t0 = now_s(), deadline = t0 + seconds;
	unsigned i;
	int r;

	if (!msgs || !iov || !bufs)
		return 1;
	for (i = 0; i < batch; i++) {
		build(bufs + i * 128, size, smac, dmac, sip, dip, (uint16_t)(sport + i % flows),
		      (uint16_t)dport);
		iov[i].iov_base = bufs + i * 128;
		iov[i].iov_len = size + taglen;
		msgs[i].msg_hdr.msg_iov = &iov[i];
		msgs[i].msg_hdr.msg_iovlen = 1;
	}
	while (!quit && queued < count) {
		unsigned n = batch;
		if (count - queued < n)
			n = (unsigned)(count - queued);
		r = sendmmsg(fd, msgs, n, MSG_DONTWAIT);
		if (r > 0)
			queued += (uint64_t)r;
		else if (errno != EAGAIN && errno != ENOBUFS && errno != EINTR)
			errors++;
		calls++;
		if ((calls & 15) == 0 && now_s() >= deadline)
			break;
	}
	printf("{\"queued\": %" PRIu64 ", \"seconds\": %.3f, \"kicks\": %" PRIu64
	       ", \"kick_errors\": %" PRIu64 ", \"ring_full\": 0}\n",
	       queued, now_s() - t0, calls, errors);
	return 0;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: cgen --iface IF --src-mac M --dst-mac M --src-ip A --dst-ip A\n"
		"            [--size 60] [--flows 8] [--sport 10000] [--dport 9]\n"
		"            [--seconds 10] [--count N] [--batch 256] [--mode ring|mmsg]\n"
		"            [--tcp syn|ack --src-count N --sports N --rate PPS] [--vlan ID]\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"iface", required_argument, NULL, 'i'},
		{"src-mac", required_argument, NULL, 'S'},
		{"dst-mac", required_argument, NULL, 'D'},
		{"src-ip", required_argument, NULL, 's'},
		{"dst-ip", required_argument, NULL, 'd'},
		{"size", required_argument, NULL, 'z'},
		{"flows", required_argument, NULL, 'f'},
		{"sport", required_argument, NULL, 'p'},
		{"dport", required_argument, NULL, 'P'},
		{"seconds", required_argument, NULL, 't'},
		{"count", required_argument, NULL, 'n'},
		{"batch", required_argument, NULL, 'b'},
		{"mode", required_argument, NULL, 'm'},
		{"tcp", required_argument, NULL, 'T'},
		{"src-count", required_argument, NULL, 'c'},
		{"sports", required_argument, NULL, 'N'},
		{"rate", required_argument, NULL, 'r'},
		{"vlan", required_argument, NULL, 'V'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *iface = NULL;
	uint8_t smac[6], dmac[6];
	struct in_addr sip = {0}, dip = {0};
	unsigned size = 60, flows = 8, sport = 10000, dport = 9, batch = 256;
	double seconds = 10, t0, t1, deadline;
	uint64_t count = UINT64_MAX, queued = 0, kicks = 0, kick_errors = 0, full = 0;
	int c, fd, one = 1, have = 0, mmsg = 0, tcp = 0;
	unsigned nsrc = 1, nports = 1;
	double rate = 0;
	unsigned i, idx = 0, n;
	struct tpacket_req req;
	struct sockaddr_ll sll;
	uint8_t *ring;

	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'i': iface = optarg; have |= 1; break;
		case 'S': if (parse_mac(optarg, smac)) goto bad; have |= 2; break;
		case 'D': if (parse_mac(optarg, dmac)) goto bad; have |= 4; break;
		case 's': if (inet_pton(AF_INET, optarg, &sip) != 1) goto bad; have |= 8; break;
		case 'd': if (inet_pton(AF_INET, optarg, &dip) != 1) goto bad; have |= 16; break;
		case 'z': size = (unsigned)atoi(optarg); break;
		case 'f': flows = (unsigned)atoi(optarg); break;
		case 'p': sport = (unsigned)atoi(optarg); break;
		case 'P': dport = (unsigned)atoi(optarg); break;
		case 't': seconds = atof(optarg); break;
		case 'n': count = strtoull(optarg, NULL, 10); break;
		case 'b': batch = (unsigned)atoi(optarg); break;
		case 'm':
			if (strcmp(optarg, "mmsg") == 0) mmsg = 1;
			else if (strcmp(optarg, "ring") != 0) goto bad;
			break;
		case 'T':
			if (strcmp(optarg, "syn") == 0) tcp = 1;
			else if (strcmp(optarg, "ack") == 0) tcp = 2;
			else goto bad;
			break;
		case 'c': nsrc = (unsigned)atoi(optarg); break;
		case 'N': nports = (unsigned)atoi(optarg); break;
		case 'r': rate = atof(optarg); break;
		case 'V':
			vlan_id = atoi(optarg);
			if (vlan_id < 0 || vlan_id > 4094) goto bad;
			taglen = 4;
			break;
		default: usage(); return 2;
		}
	}
	if (have != 31 || size < 42 || size > MAX_SIZE || flows < 1 || flows > 65535 ||
	    batch < 1 || batch > FRAME_NR || seconds <= 0 || seconds > 3600 ||
	    nsrc < 1 || nports < 1 || nports > 65535 || rate < 0 || (tcp && size < 54) ||
	    (tcp && taglen) || size + taglen > MAX_SIZE) {
		usage();
		return 2;
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);

	fd = socket(AF_PACKET, SOCK_RAW, 0);	/* protocol 0: transmit only */
	if (fd < 0) {
		perror("cgen: socket");
		return 1;
	}
	int ver = TPACKET_V2;
	if (setsockopt(fd, SOL_PACKET, PACKET_VERSION, &ver, sizeof(ver)) < 0 ||
	    setsockopt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof(one)) < 0) {
		perror("cgen: setsockopt");
		return 1;
	}
	if (tcp && !mmsg) {
		fprintf(stderr, "cgen: --tcp needs --mode mmsg\n");
		return 2;
	}
	if (mmsg) {
		memset(&sll, 0, sizeof(sll));
		sll.sll_family = AF_PACKET;
		sll.sll_ifindex = (int)if_nametoindex(iface);
		if (sll.sll_ifindex == 0 || bind(fd, (struct sockaddr *)&sll, sizeof(sll)) < 0) {
			fprintf(stderr, "cgen: cannot bind to %s\n", iface);
			return 1;
		}
		if (tcp)
			return send_tcp(fd, size, smac, dmac, sip, dip, nsrc, sport, nports, dport,
					batch, seconds, count, tcp == 2, rate);
		return send_mmsg(fd, size, smac, dmac, sip, dip, flows, sport, dport, batch,
				 seconds, count);
	}
	memset(&req, 0, sizeof(req));
	req.tp_block_size = BLOCK_SIZE;
	req.tp_block_nr = BLOCK_NR;
	req.tp_frame_size = FRAME_SIZE;
	req.tp_frame_nr = FRAME_NR;
	if (setsockopt(fd, SOL_PACKET, PACKET_TX_RING, &req, sizeof(req)) < 0) {
		perror("cgen: PACKET_TX_RING");
		return 1;
	}
	ring = mmap(NULL, (size_t)BLOCK_SIZE * BLOCK_NR, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (ring == MAP_FAILED) {
		perror("cgen: mmap");
		return 1;
	}
	memset(&sll, 0, sizeof(sll));
	sll.sll_family = AF_PACKET;
	sll.sll_protocol = 0;
	sll.sll_ifindex = (int)if_nametoindex(iface);
	if (sll.sll_ifindex == 0) {
		fprintf(stderr, "cgen: no interface %s\n", iface);
		return 1;
	}
	if (bind(fd, (struct sockaddr *)&sll, sizeof(sll)) < 0) {
		perror("cgen: bind");
		return 1;
	}
	/* frames never change: build each ring slot once, flows cycling */
	for (i = 0; i < FRAME_NR; i++) {
		uint8_t *fr = ring + (size_t)i * FRAME_SIZE;
		build(fr + TPACKET2_HDRLEN - sizeof(struct sockaddr_ll), size, smac, dmac, sip, dip,
		      (uint16_t)(sport + i % flows), (uint16_t)dport);
	}

	t0 = now_s();
	deadline = t0 + seconds;
	while (!quit && queued < count) {
		n = 0;
		while (n < batch && queued + n < count) {
			struct tpacket2_hdr *h = (struct tpacket2_hdr *)(ring + (size_t)idx * FRAME_SIZE);
			if (h->tp_status != TP_STATUS_AVAILABLE)
				break;
			h->tp_len = size + taglen;
			__atomic_store_n(&h->tp_status, TP_STATUS_SEND_REQUEST, __ATOMIC_RELEASE);
			idx = (idx + 1) % FRAME_NR;
			n++;
		}
		if (n == 0)
			full++;		/* ring full: every frame still in flight */
		queued += n;
		if (sendto(fd, NULL, 0, MSG_DONTWAIT, NULL, 0) < 0 && errno != EAGAIN &&
		    errno != ENOBUFS && errno != EINTR)
			kick_errors++;
		kicks++;
		if ((kicks & 15) == 0 && now_s() >= deadline)
			break;
	}
	/* let what is queued go out, for at most 100 ms */
	for (i = 0; i < 100; i++) {
		if (sendto(fd, NULL, 0, MSG_DONTWAIT, NULL, 0) < 0 && errno != EAGAIN &&
		    errno != ENOBUFS && errno != EINTR)
			break;
		usleep(1000);
		struct tpacket2_hdr *h = (struct tpacket2_hdr *)
			(ring + (size_t)((idx + FRAME_NR - 1) % FRAME_NR) * FRAME_SIZE);
		if (h->tp_status == TP_STATUS_AVAILABLE)
			break;
	}
	t1 = now_s();
	printf("{\"queued\": %" PRIu64 ", \"seconds\": %.3f, \"kicks\": %" PRIu64
	       ", \"kick_errors\": %" PRIu64 ", \"ring_full\": %" PRIu64 "}\n",
	       queued, t1 - t0, kicks, kick_errors, full);
	munmap(ring, (size_t)BLOCK_SIZE * BLOCK_NR);
	close(fd);
	return 0;
bad:
	fprintf(stderr, "cgen: bad argument: %s\n", optarg);
	return 2;
}
