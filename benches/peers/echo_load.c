/*
 * echo_load: a closed-loop TCP/UDP echo load generator in plain C.
 *
 * Why it exists: echotool's performance comparison measures echo servers with `echotool bench`,
 * i.e. with echotool's own client. This is a second, independent client, written separately
 * against the plain socket API, so that no figure rests on echotool's client alone: when both
 * clients agree, the figures describe the servers, not the tool measuring them.
 *
 *   echo_load tcp|udp HOST PORT [--conns N] [--size BYTES] [--depth D] [--duration SECS]
 *                               [--warmup SECS] [--threads T]
 *   defaults: 1 connection, 64 B, depth 1, 5 s measured after 1 s of warm-up, 1 thread.
 *   HOST is an IPv4 or IPv6 literal.
 *
 * Every connection (TCP) or connected socket (UDP) keeps DEPTH messages in flight: each full
 * echo received lets the next message go. Sockets are non-blocking, with one epoll loop per
 * thread; connections are spread round-robin over the threads. A message is SIZE bytes: the
 * first 8 (when SIZE >= 8) carry a per-connection sequence number, the rest a fixed pattern.
 * Every echo is compared byte for byte with what was sent: TCP echoes are read back in stream
 * order, exactly SIZE bytes per message; UDP echoes are matched by sequence number, and a
 * datagram not echoed within 1 s is counted lost and its slot reused.
 *
 * Round-trip times run from just before the message's first byte is written to the read that
 * completes its echo (CLOCK_MONOTONIC), and go into a log-linear histogram (exact below 256 ns,
 * then 128 buckets per power of two: under 0.4% error). The next message goes out as soon as
 * an echo is in, so the mean round trip should equal conns * depth / msgs_per_sec.
 *
 * Timeline: the warm-up starts when the connections are being made; only messages sent after
 * it are timed, and "messages" counts echoes completed inside the measured window. When the
 * window closes no new message is sent, and echoes in flight get at most 2 s more (their round
 * trips are still timed): the run is bounded whatever the server does. A TCP connection still
 * waiting for echoes then, or not connected by the end of the window, counts as an error.
 * errors, mismatches (echoes that differ: neither counted in messages nor timed) and lost (UDP)
 * count over the whole run.
 *
 * Output: one JSON line on stdout: the parameters, messages, msgs_per_sec, mb_per_sec (echoed
 * payload, one direction), p50/p90/p99/p999/max/mean_us (null if nothing was timed), errors,
 * mismatches, lost. Exit 0 (also with errors); 1 if no connection could be made or on a system
 * failure ("error: ..." on stderr); 2 on bad arguments.
 * Build: gcc -O2 -Wall -Wextra -pthread -o echo_load echo_load.c -lm  (see build.sh)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define NS_PER_S 1000000000ULL
#define UDP_TIMEOUT_NS NS_PER_S   /* a datagram not echoed within this long is lost */
#define DRAIN_NS (2 * NS_PER_S)   /* after the window, at most this long for echoes in flight */
#define TICK_MS 10                /* epoll_wait timeout: clock checks and UDP loss scans */
#define RBUF_SIZE (256 * 1024)    /* per-thread receive buffer (> any UDP datagram) */
#define MAX_EVENTS 256
#define UDP_MAX 65507             /* largest UDP payload over IPv4 */
#define HIST_TOP_BIT 36           /* histogram range: 0 .. 2^36 ns (68 s), larger values clamp */
#define NBUCKETS (256 + (HIST_TOP_BIT - 8) * 128)
#define ERR_EOF (-1)              /* pseudo errnos for the first-error message */
#define ERR_EXTRA (-2)
#define ERR_STALLED (-3)

enum { CONNECTING, OPEN, DEAD };

struct conn {
	int fd, state, want_out;
	uint64_t wseq, rseq;   /* TCP: next message to write / to read back */
	size_t woff, roff;     /* TCP: bytes of those written / read so far */
	int rbad;              /* TCP: the echo being read differs from what was sent */
	unsigned char hdr[8];  /* sequence number of the message being written */
	uint64_t *sent;        /* TCP: send time of message s at [s % depth]; UDP: per slot, 0 = free */
	uint64_t *slot_seq;    /* UDP: sequence number in (or next for) each slot; slot = seq % depth */
};

struct worker {
	pthread_t tid;
	int nconns, ep, alive, sending, first_err;
	struct conn *conns;
	unsigned char *rbuf;
	uint64_t connected, messages, errors, mismatches, lost, max_ns, sum_ns;
	uint64_t hist[NBUCKETS];
};

static struct {
	int tcp, conns, depth, threads;
	size_t size;
	double duration, warmup;
	struct sockaddr_storage addr;
	socklen_t addrlen;
	uint64_t t_start, t_end, t_stop; /* measured window [t_start, t_end); hard stop at t_stop */
	unsigned char *pattern;          /* message bytes (the first 8 give way to the sequence) */
} cfg;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

__attribute__((noreturn)) static void fatal(const char *what)
{
	fprintf(stderr, "error: %s: %s\n", what, strerror(errno));
	exit(1);
}

/* ---------------------------------------------------------------- histogram */

static unsigned bucket_of(uint64_t v)
{
	if (v >= (1ULL << HIST_TOP_BIT))
		v = (1ULL << HIST_TOP_BIT) - 1;
	if (v < 256)
		return (unsigned)v;
	int shift = 63 - __builtin_clzll(v) - 7; /* v >> shift is in 128..255 */
	return 256 + (unsigned)(shift - 1) * 128 + (unsigned)(v >> shift) - 128;
}

static double bucket_mid(unsigned i)
{
	if (i < 256)
		return i;
	unsigned shift = (i - 256) / 128 + 1;
	uint64_t low = (uint64_t)(128 + (i - 256) % 128) << shift;
	return (double)low + (double)((1ULL << shift) - 1) / 2;
}

/* ---------------------------------------------------------------- messages */

static void fail(struct worker *w, struct conn *c, int err)
{
	if (!w->first_err)
		w->first_err = err;
	w->errors++;
	if (c->state != DEAD) {
		close(c->fd); /* also leaves the epoll set */
		c->state = DEAD;
		w->alive--;
	}
}

static void set_out(struct worker *w, struct conn *c, int on)
{
	if (c->want_out == on || c->state != OPEN)
		return;
	struct epoll_event ev = { .events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = c };
	if (epoll_ctl(w->ep, EPOLL_CTL_MOD, c->fd, &ev) < 0)
		fail(w, c, errno);
	c->want_out = on;
}

/* The iovec of a message with sequence header hdr, from byte off on. */
static int msg_iov(unsigned char *hdr, size_t off, struct iovec *iov)
{
	int n = 0;
	size_t h = cfg.size >= 8 ? 8 : 0;
	if (off < h) {
		iov[n].iov_base = hdr + off;
		iov[n++].iov_len = h - off;
		off = h;
	}
	if (off < cfg.size) {
		iov[n].iov_base = cfg.pattern + off;
		iov[n++].iov_len = cfg.size - off;
	}
	return n;
}

/* Do the k bytes p of an echo match bytes off.. of message seq? */
static int chunk_ok(uint64_t seq, size_t off, const unsigned char *p, size_t k)
{
	if (cfg.size >= 8 && off < 8) {
		unsigned char h[8];
		memcpy(h, &seq, 8);
		size_t m = k < 8 - off ? k : 8 - off;
		if (memcmp(p, h + off, m))
			return 0;
		p += m, k -= m, off += m;
	}
	return k == 0 || !memcmp(p, cfg.pattern + off, k);
}

static void complete(struct worker *w, uint64_t sent, uint64_t now, int bad)
{
	if (bad) { /* a wrong echo is neither counted nor timed */
		w->mismatches++;
		return;
	}
	if (now >= cfg.t_start && now < cfg.t_end)
		w->messages++;
	if (sent >= cfg.t_start) {
		uint64_t d = now - sent;
		w->hist[bucket_of(d)]++;
		w->sum_ns += d;
		if (d > w->max_ns)
			w->max_ns = d;
	}
}

/* ---------------------------------------------------------------- TCP */

/* Writes until DEPTH messages are in flight (only finishes a partial one when not sending). */
static void tcp_pump(struct worker *w, struct conn *c)
{
	for (;;) {
		if (c->woff == 0) {
			if (!w->sending || c->wseq - c->rseq >= (uint64_t)cfg.depth)
				break;
			memcpy(c->hdr, &c->wseq, 8);
			c->sent[c->wseq % (uint64_t)cfg.depth] = now_ns();
		}
		struct iovec iov[2];
		struct msghdr m = { .msg_iov = iov, .msg_iovlen = (size_t)msg_iov(c->hdr, c->woff, iov) };
		ssize_t r = sendmsg(c->fd, &m, MSG_NOSIGNAL);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				set_out(w, c, 1);
				return;
			}
			fail(w, c, errno);
			return;
		}
		c->woff += (size_t)r;
		if (c->woff == cfg.size) {
			c->woff = 0;
			c->wseq++;
		}
	}
	set_out(w, c, 0);
}

/* Checks n echoed bytes against the stream sent; -1 if the connection was dropped. */
static int tcp_consume(struct worker *w, struct conn *c, const unsigned char *p, size_t n,
		       uint64_t now)
{
	uint64_t pending = (c->wseq - c->rseq) * cfg.size + c->woff - c->roff;
	if (n > pending) { /* more bytes than were ever sent */
		w->mismatches++;
		fail(w, c, ERR_EXTRA);
		return -1;
	}
	while (n) {
		size_t k = cfg.size - c->roff < n ? cfg.size - c->roff : n;
		if (!c->rbad && !chunk_ok(c->rseq, c->roff, p, k))
			c->rbad = 1;
		p += k, n -= k, c->roff += k;
		if (c->roff == cfg.size) {
			complete(w, c->sent[c->rseq % (uint64_t)cfg.depth], now, c->rbad);
			c->rseq++;
			c->roff = 0;
			c->rbad = 0;
		}
	}
	return 0;
}

static void tcp_readable(struct worker *w, struct conn *c)
{
	for (int i = 0; i < 4; i++) {
		ssize_t n = recv(c->fd, w->rbuf, RBUF_SIZE, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n <= 0) {
			fail(w, c, n == 0 ? ERR_EOF : errno);
			return;
		}
		if (tcp_consume(w, c, w->rbuf, (size_t)n, now_ns()) < 0)
			return;
		if (n < RBUF_SIZE)
			break;
	}
	tcp_pump(w, c);
}

/* ---------------------------------------------------------------- UDP */

static void udp_send(struct worker *w, struct conn *c, unsigned i)
{
	memcpy(c->hdr, &c->slot_seq[i], 8);
	struct iovec iov[2];
	struct msghdr m = { .msg_iov = iov, .msg_iovlen = (size_t)msg_iov(c->hdr, 0, iov) };
	c->sent[i] = now_ns();
	if (sendmsg(c->fd, &m, MSG_NOSIGNAL) < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
		c->sent[i] = 0; /* retried when writable */
		set_out(w, c, 1);
	}
	/* Other failures (ECONNREFUSED from an earlier ICMP error, ENOBUFS, ...) keep the slot
	 * busy: the datagram counts as lost after the timeout, which also paces the retries. */
}

static void udp_pump(struct worker *w, struct conn *c)
{
	set_out(w, c, 0);
	for (unsigned i = 0; w->sending && c->state == OPEN && i < (unsigned)cfg.depth; i++)
		if (!c->sent[i])
			udp_send(w, c, i);
}

static void udp_datagram(struct worker *w, struct conn *c, const unsigned char *p, size_t n,
			 uint64_t now)
{
	if (n < 8) {
		w->mismatches++;
		return;
	}
	uint64_t seq;
	memcpy(&seq, p, 8);
	unsigned i = (unsigned)(seq % (uint64_t)cfg.depth);
	int ok = n == cfg.size && !memcmp(p + 8, cfg.pattern + 8, cfg.size - 8);
	if (!c->sent[i] || c->slot_seq[i] != seq) {
		if (seq >= c->slot_seq[i] || !ok) /* never sent, or garbled */
			w->mismatches++;
		return; /* else a late or duplicated echo of a datagram already settled */
	}
	complete(w, c->sent[i], now, !ok);
	c->sent[i] = 0;
	c->slot_seq[i] += (uint64_t)cfg.depth;
	if (w->sending)
		udp_send(w, c, i);
}

static void udp_readable(struct worker *w, struct conn *c)
{
	for (int k = 0; k < 64 && c->state == OPEN; k++) {
		ssize_t n = recv(c->fd, w->rbuf, RBUF_SIZE, MSG_TRUNC);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n < 0)
			continue; /* EINTR, or an ICMP error (ECONNREFUSED...): datagrams just get lost */
		udp_datagram(w, c, w->rbuf, (size_t)n, now_ns());
	}
}

static void udp_expire(struct worker *w, struct conn *c, uint64_t now)
{
	for (unsigned i = 0; c->state == OPEN && i < (unsigned)cfg.depth; i++) {
		if (c->sent[i] && now - c->sent[i] >= UDP_TIMEOUT_NS) {
			w->lost++;
			c->sent[i] = 0;
			c->slot_seq[i] += (uint64_t)cfg.depth;
			if (w->sending)
				udp_send(w, c, i);
		}
	}
}

/* ---------------------------------------------------------------- connections, threads */

static int idle(const struct conn *c)
{
	if (c->state != OPEN)
		return 1;
	if (cfg.tcp)
		return c->woff == 0 && c->wseq == c->rseq;
	for (int i = 0; i < cfg.depth; i++)
		if (c->sent[i])
			return 0;
	return 1;
}

static void conn_up(struct worker *w, struct conn *c)
{
	c->state = OPEN;
	w->connected++;
	if (cfg.tcp)
		tcp_pump(w, c);
	else
		udp_pump(w, c);
}

static void conn_start(struct worker *w, struct conn *c)
{
	c->sent = calloc((size_t)cfg.depth, sizeof *c->sent);
	c->slot_seq = calloc((size_t)cfg.depth, sizeof *c->slot_seq);
	if (!c->sent || !c->slot_seq)
		fatal("calloc");
	for (int i = 0; i < cfg.depth; i++)
		c->slot_seq[i] = (uint64_t)i;
	c->state = DEAD;
	c->fd = socket(cfg.addr.ss_family,
		       (cfg.tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		fail(w, c, errno);
		return;
	}
	c->state = CONNECTING;
	w->alive++;
	int one = 1, rcvbuf = 4 << 20;
	if (cfg.tcp)
		setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	else /* room for bursts of echoes; the kernel caps it at net.core.rmem_max */
		setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
	int r = connect(c->fd, (const struct sockaddr *)&cfg.addr, cfg.addrlen);
	if (r < 0 && errno != EINPROGRESS) {
		fail(w, c, errno);
		return;
	}
	c->want_out = r < 0;
	struct epoll_event ev = { .events = r < 0 ? EPOLLOUT : EPOLLIN, .data.ptr = c };
	if (epoll_ctl(w->ep, EPOLL_CTL_ADD, c->fd, &ev) < 0)
		fail(w, c, errno);
	else if (r == 0)
		conn_up(w, c);
}

static void on_event(struct worker *w, struct conn *c, uint32_t events)
{
	if (c->state == DEAD)
		return;
	if (c->state == CONNECTING) {
		int err = 0;
		socklen_t len = sizeof err;
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
			err = errno;
		if (err)
			fail(w, c, err);
		else
			conn_up(w, c);
		return;
	}
	if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
		if (cfg.tcp)
			tcp_readable(w, c); /* also writes what the echoes allow */
		else
			udp_readable(w, c);
	}
	if ((events & EPOLLOUT) && c->state == OPEN) {
		if (cfg.tcp)
			tcp_pump(w, c);
		else
			udp_pump(w, c);
	}
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	if ((w->ep = epoll_create1(EPOLL_CLOEXEC)) < 0)
		fatal("epoll_create1");
	w->sending = 1;
	for (int i = 0; i < w->nconns; i++)
		conn_start(w, &w->conns[i]);
	struct epoll_event evs[MAX_EVENTS];
	uint64_t last_scan = now_ns();
	while (w->alive > 0) {
		uint64_t now = now_ns();
		if (now >= cfg.t_stop)
			break;
		if (w->sending && now >= cfg.t_end) {
			w->sending = 0;
			for (int i = 0; i < w->nconns; i++)
				if (w->conns[i].state == CONNECTING)
					fail(w, &w->conns[i], ETIMEDOUT);
		}
		if (!cfg.tcp && now - last_scan >= TICK_MS * 1000000ULL) {
			for (int i = 0; i < w->nconns; i++)
				udp_expire(w, &w->conns[i], now);
			last_scan = now;
		}
		if (!w->sending) {
			int busy = 0;
			for (int i = 0; i < w->nconns && !busy; i++)
				busy = !idle(&w->conns[i]);
			if (!busy)
				break;
		}
		int n = epoll_wait(w->ep, evs, MAX_EVENTS, TICK_MS);
		if (n < 0 && errno != EINTR)
			fatal("epoll_wait");
		for (int i = 0; i < n; i++)
			on_event(w, evs[i].data.ptr, evs[i].events);
	}
	for (int i = 0; i < w->nconns; i++) {
		struct conn *c = &w->conns[i];
		if (!idle(c)) /* TCP echoes still missing after the drain: the server stalled */
			fail(w, c, ERR_STALLED);
		if (c->state != DEAD)
			close(c->fd);
		free(c->sent);
		free(c->slot_seq);
	}
	close(w->ep);
	return NULL;
}

/* ---------------------------------------------------------------- main */

__attribute__((noreturn)) static void usage(int status)
{
	fprintf(status ? stderr : stdout,
		"usage: echo_load tcp|udp HOST PORT [--conns N] [--size BYTES] [--depth D]\n"
		"                 [--duration SECS] [--warmup SECS] [--threads T]\n"
		"  defaults: --conns 1 --size 64 --depth 1 --duration 5 --warmup 1 --threads 1\n"
		"  HOST is an IPv4 or IPv6 literal. Prints one JSON line of results.\n");
	exit(status);
}

/* A number in min..max (a whole one if whole), or exit 2. */
static double parse_num(const char *s, double min, double max, int whole, const char *what)
{
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || end == s || *end || !(v >= min && v <= max) || (whole && v != floor(v))) {
		fprintf(stderr, "echo_load: invalid %s '%s' (want %s%.10g..%.10g)\n", what, s,
			whole ? "" : "seconds, ", min, max);
		exit(2);
	}
	return v;
}

static const char *err_text(int err)
{
	switch (err) {
	case ERR_EOF: return "connection closed by the server";
	case ERR_EXTRA: return "the server sent more bytes than it was sent";
	case ERR_STALLED: return "echoes still missing when the run ended";
	default: return strerror(err);
	}
}

static void print_secs(const char *key, double v)
{
	printf(v == floor(v) ? ",\"%s\":%.1f" : ",\"%s\":%g", key, v);
}

int main(int argc, char **argv)
{
	const char *pos[3];
	int npos = 0;
	cfg.conns = cfg.depth = cfg.threads = 1;
	cfg.size = 64;
	cfg.duration = 5;
	cfg.warmup = 1;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "-h") || !strcmp(a, "--help"))
			usage(0);
		if (strncmp(a, "--", 2)) {
			if (npos == 3)
				usage(2);
			pos[npos++] = a;
			continue;
		}
		if (i + 1 == argc) {
			fprintf(stderr, "echo_load: %s needs a value\n", a);
			exit(2);
		}
		const char *v = argv[++i];
		if (!strcmp(a, "--conns"))
			cfg.conns = (int)parse_num(v, 1, 1000000, 1, a);
		else if (!strcmp(a, "--size"))
			cfg.size = (size_t)parse_num(v, 1, 64 << 20, 1, a);
		else if (!strcmp(a, "--depth"))
			cfg.depth = (int)parse_num(v, 1, 65536, 1, a);
		else if (!strcmp(a, "--threads"))
			cfg.threads = (int)parse_num(v, 1, 1024, 1, a);
		else if (!strcmp(a, "--duration"))
			cfg.duration = parse_num(v, 0.001, 86400, 0, a);
		else if (!strcmp(a, "--warmup"))
			cfg.warmup = parse_num(v, 0, 86400, 0, a);
		else {
			fprintf(stderr, "echo_load: unknown option %s\n", a);
			usage(2);
		}
	}
	if (npos != 3)
		usage(2);
	if (!strcmp(pos[0], "tcp") || !strcmp(pos[0], "udp"))
		cfg.tcp = pos[0][0] == 't';
	else
		usage(2);
	parse_num(pos[2], 1, 65535, 1, "PORT");
	if (!cfg.tcp && (cfg.size < 8 || cfg.size > UDP_MAX)) {
		fprintf(stderr, "echo_load: udp needs --size 8..%d (the sequence number, one datagram)\n",
			UDP_MAX);
		exit(2);
	}
	if (cfg.threads > cfg.conns)
		cfg.threads = cfg.conns;

	struct addrinfo hints = { 0 }, *ai;
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = cfg.tcp ? SOCK_STREAM : SOCK_DGRAM;
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
	int gai = getaddrinfo(pos[1], pos[2], &hints, &ai);
	if (gai) {
		fprintf(stderr, "echo_load: invalid HOST '%s': %s\n", pos[1], gai_strerror(gai));
		exit(2);
	}
	memcpy(&cfg.addr, ai->ai_addr, ai->ai_addrlen);
	cfg.addrlen = ai->ai_addrlen;
	freeaddrinfo(ai);

	signal(SIGPIPE, SIG_IGN);
	struct rlimit rl; /* many connections need many fds: use the hard limit */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (!(cfg.pattern = malloc(cfg.size)))
		fatal("malloc");
	for (size_t i = 0; i < cfg.size; i++) /* every byte value, lower-case letters included */
		cfg.pattern[i] = (unsigned char)(i * 31 + 7);

	struct worker *ws = calloc((size_t)cfg.threads, sizeof *ws);
	if (!ws)
		fatal("calloc");
	cfg.t_start = now_ns() + (uint64_t)(cfg.warmup * 1e9);
	cfg.t_end = cfg.t_start + (uint64_t)(cfg.duration * 1e9);
	cfg.t_stop = cfg.t_end + DRAIN_NS;
	for (int t = 0; t < cfg.threads; t++) {
		struct worker *w = &ws[t];
		w->nconns = cfg.conns / cfg.threads + (t < cfg.conns % cfg.threads);
		if (!(w->conns = calloc((size_t)w->nconns, sizeof *w->conns)) ||
		    !(w->rbuf = malloc(RBUF_SIZE)))
			fatal("malloc");
		int err = pthread_create(&w->tid, NULL, worker_main, w);
		if (err) {
			errno = err;
			fatal("pthread_create");
		}
	}

	struct worker sum = { 0 };
	for (int t = 0; t < cfg.threads; t++) {
		struct worker *w = &ws[t];
		pthread_join(w->tid, NULL);
		sum.connected += w->connected;
		sum.messages += w->messages;
		sum.errors += w->errors;
		sum.mismatches += w->mismatches;
		sum.lost += w->lost;
		sum.sum_ns += w->sum_ns;
		if (w->max_ns > sum.max_ns)
			sum.max_ns = w->max_ns;
		if (!sum.first_err)
			sum.first_err = w->first_err;
		for (int i = 0; i < NBUCKETS; i++)
			sum.hist[i] += w->hist[i];
		free(w->conns);
		free(w->rbuf);
	}
	free(ws);
	free(cfg.pattern);
	if (sum.connected == 0) {
		int v6 = cfg.addr.ss_family == AF_INET6;
		fprintf(stderr, "error: no connection could be made to %s://%s%s%s:%s: %s\n", pos[0],
			v6 ? "[" : "", pos[1], v6 ? "]" : "", pos[2], err_text(sum.first_err));
		return 1;
	}

	printf("{\"proto\":\"%s\",\"conns\":%d,\"size\":%zu,\"depth\":%d,\"threads\":%d", pos[0],
	       cfg.conns, cfg.size, cfg.depth, cfg.threads);
	print_secs("warmup_s", cfg.warmup);
	print_secs("duration_s", cfg.duration);
	printf(",\"messages\":%llu,\"msgs_per_sec\":%.1f,\"mb_per_sec\":%.3f",
	       (unsigned long long)sum.messages, (double)sum.messages / cfg.duration,
	       (double)sum.messages * (double)cfg.size / 1e6 / cfg.duration);
	uint64_t timed = 0;
	for (int i = 0; i < NBUCKETS; i++)
		timed += sum.hist[i];
	static const struct { const char *key; uint64_t permille; } pcts[] = {
		{ "p50_us", 500 }, { "p90_us", 900 }, { "p99_us", 990 }, { "p999_us", 999 }
	};
	for (size_t p = 0; p < sizeof pcts / sizeof pcts[0]; p++) {
		if (!timed) {
			printf(",\"%s\":null", pcts[p].key);
			continue;
		}
		uint64_t rank = (timed * pcts[p].permille + 999) / 1000, seen = 0;
		unsigned i = 0;
		while (seen + sum.hist[i] < rank)
			seen += sum.hist[i++];
		double v = fmin(bucket_mid(i), (double)sum.max_ns); /* the top bucket may hold the max */
		printf(",\"%s\":%.1f", pcts[p].key, v / 1e3);
	}
	if (timed)
		printf(",\"max_us\":%.1f,\"mean_us\":%.1f", (double)sum.max_ns / 1e3,
		       (double)sum.sum_ns / (double)timed / 1e3);
	else
		printf(",\"max_us\":null,\"mean_us\":null");
	printf(",\"errors\":%llu,\"mismatches\":%llu,\"lost\":%llu}\n",
	       (unsigned long long)sum.errors, (unsigned long long)sum.mismatches,
	       (unsigned long long)sum.lost);
	return 0;
}
