/*
 * epoll_echo: a baseline TCP/UDP echo server in plain C, one of the peers echotool is
 * benchmarked against.
 *
 *   epoll_echo tcp|udp PORT [THREADS [ADDR]]      THREADS default 1, ADDR default 127.0.0.1
 *
 * Every thread owns its own socket bound to the same address with SO_REUSEPORT, so the kernel
 * spreads connections (TCP) or flows (UDP) across threads and nothing is shared between them.
 *
 * TCP: one level-triggered epoll loop per thread. Bytes are read into a per-thread buffer and
 * written straight back; only when the peer's window is full are the unsent bytes kept in the
 * connection's own buffer (allocated on first need), and reading that connection stops
 * (EPOLLOUT) until they are flushed. At EOF (the client half-closed) nothing is pending, so the
 * write side is shut down and the socket closed: every byte is echoed, in order, unchanged.
 *
 * UDP: one blocking recvmmsg/sendmmsg loop per thread; each datagram goes back to its sender.
 *
 * Prints "listening on tcp://IP:PORT" (or udp://) to stderr once every socket is bound, and
 * exits 0 on SIGINT or SIGTERM.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
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
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BUF_SIZE (64 * 1024)   /* TCP read buffer and per-connection pending buffer */
#define MAX_EVENTS 256
#define READS_PER_EVENT 4      /* keep reading while reads fill the buffer, up to this */
#define ACCEPTS_PER_EVENT 64
#define ACCEPT_BACKOFF_MS 100  /* listener paused this long on EMFILE/ENFILE/ENOBUFS/ENOMEM */
#define UDP_BATCH 32
#define UDP_SLOT 65536         /* > 65527, the largest UDP payload over IPv6: never truncates */
#define MAX_THREADS 1024
#define BACKLOG 1024

struct conn {
	int fd;
	uint32_t off, len; /* unsent bytes are pend[off..len); len == 0: none, reading */
	char *pend;        /* BUF_SIZE bytes, allocated on the first short write */
};

__attribute__((noreturn)) static void die(const char *what)
{
	perror(what);
	exit(1);
}

__attribute__((noreturn)) static void usage(void)
{
	fprintf(stderr, "usage: epoll_echo tcp|udp PORT [THREADS [ADDR]]\n"
			"  THREADS default 1, ADDR (IPv4 or IPv6 literal) default 127.0.0.1\n");
	exit(2);
}

static long parse_num(const char *s, long min, long max, const char *what)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max) {
		fprintf(stderr, "epoll_echo: invalid %s '%s' (want %ld..%ld)\n", what, s, min, max);
		exit(2);
	}
	return v;
}

/* ---------------------------------------------------------------- TCP */

static void conn_close(struct conn *c)
{
	close(c->fd); /* also removes it from the epoll set: the fd is never dup'ed */
	free(c->pend);
	free(c);
}

static int conn_want(int ep, struct conn *c, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = c };
	return epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Sends as much of p[0..n) as the socket takes now; *sent says how much. -1 on error. */
static int send_some(int fd, const char *p, size_t n, size_t *sent)
{
	size_t done = 0;
	while (done < n) {
		ssize_t w = send(fd, p + done, n - done, MSG_NOSIGNAL);
		if (w > 0) {
			done += (size_t)w;
		} else if (w < 0 && errno == EINTR) {
			continue;
		} else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			break;
		} else {
			return -1;
		}
	}
	*sent = done;
	return 0;
}

static void on_readable(int ep, struct conn *c, char *buf)
{
	for (int i = 0; i < READS_PER_EVENT; i++) {
		ssize_t n = recv(c->fd, buf, BUF_SIZE, 0);
		if (n == 0) {
			/* EOF: nothing is pending (we only read when len == 0), so all is echoed. */
			shutdown(c->fd, SHUT_WR);
			conn_close(c);
			return;
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			conn_close(c); /* ECONNRESET and friends */
			return;
		}
		size_t sent;
		if (send_some(c->fd, buf, (size_t)n, &sent) < 0) {
			conn_close(c);
			return;
		}
		if (sent < (size_t)n) {
			if (!c->pend && !(c->pend = malloc(BUF_SIZE))) {
				conn_close(c);
				return;
			}
			memcpy(c->pend, buf + sent, (size_t)n - sent);
			c->off = 0;
			c->len = (uint32_t)((size_t)n - sent);
			if (conn_want(ep, c, EPOLLOUT) < 0)
				conn_close(c);
			return;
		}
		if (n < BUF_SIZE)
			return; /* most likely drained; level-triggered epoll tells us if not */
	}
}

static void on_writable(int ep, struct conn *c)
{
	size_t sent;
	if (send_some(c->fd, c->pend + c->off, c->len - c->off, &sent) < 0) {
		conn_close(c);
		return;
	}
	c->off += (uint32_t)sent;
	if (c->off == c->len) {
		c->off = c->len = 0;
		if (conn_want(ep, c, EPOLLIN) < 0)
			conn_close(c);
	}
}

/* Accepts what is queued. Returns -1 when the listener should back off (out of fds/memory). */
static int on_acceptable(int ep, int lfd)
{
	for (int i = 0; i < ACCEPTS_PER_EVENT; i++) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			switch (errno) {
			case EAGAIN:
				return 0;
			case EINTR:
			case ECONNABORTED:
			/* Linux passes pending network errors of the new connection to accept(). */
			case EPROTO:
			case EPERM:
			case ENETDOWN:
			case ENOPROTOOPT:
			case EHOSTDOWN:
			case ENONET:
			case EHOSTUNREACH:
			case EOPNOTSUPP:
			case ENETUNREACH:
			case ETIMEDOUT:
				continue;
			default: /* EMFILE, ENFILE, ENOBUFS, ENOMEM, anything unexpected */
				return -1;
			}
		}
		int one = 1;
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		struct conn *c = calloc(1, sizeof *c);
		if (!c) {
			close(fd);
			return -1;
		}
		c->fd = fd;
		struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
		if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
			conn_close(c);
			return -1;
		}
	}
	return 0;
}

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct worker {
	int fd; /* listening (TCP) or bound (UDP) socket */
	int ep; /* TCP: the thread's epoll instance */
};

static void *tcp_worker(void *arg)
{
	const struct worker *w = arg;
	int lfd = w->fd, ep = w->ep;
	char *buf = malloc(BUF_SIZE);
	if (!buf)
		die("malloc");
	/* The listener is the only entry whose data.ptr is NULL. */
	struct epoll_event lev = { .events = EPOLLIN, .data.ptr = NULL };
	if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev) < 0)
		die("epoll_ctl");
	struct epoll_event evs[MAX_EVENTS];
	long long resume_at = -1; /* >= 0: listener paused until then */
	for (;;) {
		int timeout = -1;
		if (resume_at >= 0) {
			long long left = resume_at - now_ms();
			if (left <= 0) {
				if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev) < 0)
					die("epoll_ctl");
				resume_at = -1;
			} else {
				timeout = (int)left;
			}
		}
		int n = epoll_wait(ep, evs, MAX_EVENTS, timeout);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			die("epoll_wait");
		}
		for (int i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;
			if (!c) {
				if (on_acceptable(ep, lfd) < 0) {
					if (epoll_ctl(ep, EPOLL_CTL_DEL, lfd, NULL) < 0)
						die("epoll_ctl");
					resume_at = now_ms() + ACCEPT_BACKOFF_MS;
				}
			} else if (c->len) {
				on_writable(ep, c); /* also on EPOLLERR/EPOLLHUP: send reports it */
			} else {
				on_readable(ep, c, buf); /* likewise recv */
			}
		}
	}
	return NULL;
}

/* ---------------------------------------------------------------- UDP */

static void *udp_worker(void *arg)
{
	int fd = ((const struct worker *)arg)->fd;
	struct mmsghdr *msgs = calloc(UDP_BATCH, sizeof *msgs);
	struct iovec *iov = calloc(UDP_BATCH, sizeof *iov);
	struct sockaddr_storage *peers = calloc(UDP_BATCH, sizeof *peers);
	char *bufs = malloc((size_t)UDP_BATCH * UDP_SLOT);
	if (!msgs || !iov || !peers || !bufs)
		die("malloc");
	for (int i = 0; i < UDP_BATCH; i++) {
		iov[i].iov_base = bufs + (size_t)i * UDP_SLOT;
		msgs[i].msg_hdr.msg_iov = &iov[i];
		msgs[i].msg_hdr.msg_iovlen = 1;
		msgs[i].msg_hdr.msg_name = &peers[i];
	}
	for (;;) {
		for (int i = 0; i < UDP_BATCH; i++) {
			iov[i].iov_len = UDP_SLOT;
			msgs[i].msg_hdr.msg_namelen = sizeof peers[i];
		}
		/* Blocks for the first datagram, then takes whatever else is already queued. */
		int n = recvmmsg(fd, msgs, UDP_BATCH, MSG_WAITFORONE, NULL);
		if (n <= 0) {
			if (n < 0 && (errno == EBADF || errno == ENOTSOCK || errno == EFAULT ||
				      errno == EINVAL))
				die("recvmmsg");
			continue; /* transient (EINTR, ENOMEM, a queued ICMP error, ...) */
		}
		for (int i = 0; i < n; i++)
			iov[i].iov_len = msgs[i].msg_len;
		for (int sent = 0; sent < n;) {
			int r = sendmmsg(fd, msgs + sent, (unsigned int)(n - sent), 0);
			if (r > 0)
				sent += r;
			else if (r < 0 && errno == EINTR)
				continue;
			else
				sent++; /* that datagram could not be sent: drop it, keep going */
		}
	}
	return NULL;
}

/* ---------------------------------------------------------------- main */

/*
 * The first socket is bound *without* SO_REUSEPORT and gets it only afterwards; the others
 * set it before binding and join the first one's group. So the port is never shared with a
 * socket outside this process: an explicit port in use fails with EADDRINUSE instead of
 * splitting traffic with a stale instance, and a UDP port-0 bind cannot land on a port that
 * another same-user SO_REUSEPORT socket holds (the kernel does not skip those for UDP).
 */
static int open_socket(const struct sockaddr_storage *ss, socklen_t len, int tcp, int first)
{
	int fd = socket(ss->ss_family, (tcp ? SOCK_STREAM | SOCK_NONBLOCK : SOCK_DGRAM) | SOCK_CLOEXEC,
			0);
	if (fd < 0)
		die("socket");
	int one = 1;
	/* Not SO_REUSEADDR on UDP: there it lets a bind share a port that is in use. */
	if (tcp && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0)
		die("setsockopt(SO_REUSEADDR)");
	if (!first && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0)
		die("setsockopt(SO_REUSEPORT)");
	if (bind(fd, (const struct sockaddr *)ss, len) < 0)
		die("bind");
	if (first && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0)
		die("setsockopt(SO_REUSEPORT)");
	if (tcp && listen(fd, BACKLOG) < 0)
		die("listen");
	return fd;
}

int main(int argc, char **argv)
{
	if (argc < 3 || argc > 5)
		usage();
	int tcp;
	if (!strcmp(argv[1], "tcp"))
		tcp = 1;
	else if (!strcmp(argv[1], "udp"))
		tcp = 0;
	else
		usage();
	parse_num(argv[2], 0, 65535, "PORT");
	int threads = argc > 3 ? (int)parse_num(argv[3], 1, MAX_THREADS, "THREADS") : 1;
	const char *host = argc > 4 ? argv[4] : "127.0.0.1";

	struct addrinfo hints = { 0 }, *ai;
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = tcp ? SOCK_STREAM : SOCK_DGRAM;
	hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE;
	int gai = getaddrinfo(host, argv[2], &hints, &ai);
	if (gai) {
		fprintf(stderr, "epoll_echo: invalid ADDR '%s': %s\n", host, gai_strerror(gai));
		return 2;
	}
	struct sockaddr_storage ss;
	socklen_t len = ai->ai_addrlen;
	memcpy(&ss, ai->ai_addr, len);
	freeaddrinfo(ai);

	/* SIGINT/SIGTERM are taken by sigwait() in main; the workers inherit the blocked mask. */
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	if (pthread_sigmask(SIG_BLOCK, &sigs, NULL))
		die("pthread_sigmask");
	signal(SIGPIPE, SIG_IGN);

	/* Every fd is made here, before any thread can fill the fd table with connections. */
	struct worker *ws = calloc((size_t)threads, sizeof *ws);
	if (!ws)
		die("calloc");
	for (int i = 0; i < threads; i++) {
		ws[i].fd = open_socket(&ss, len, tcp, i == 0);
		ws[i].ep = -1;
		if (tcp && (ws[i].ep = epoll_create1(EPOLL_CLOEXEC)) < 0)
			die("epoll_create1");
		if (i == 0) { /* PORT may be 0: the others join the port the first one got */
			socklen_t l = sizeof ss;
			if (getsockname(ws[0].fd, (struct sockaddr *)&ss, &l) < 0)
				die("getsockname");
			len = l;
		}
	}
	for (int i = 0; i < threads; i++) {
		pthread_t t;
		int err = pthread_create(&t, NULL, tcp ? tcp_worker : udp_worker, &ws[i]);
		if (err) {
			errno = err;
			die("pthread_create");
		}
		pthread_detach(t);
	}

	char ip[INET6_ADDRSTRLEN];
	unsigned port;
	if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof ip);
		port = ntohs(s6->sin6_port);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof ip);
		port = ntohs(s4->sin_port);
	}
	int v6 = ss.ss_family == AF_INET6;
	fprintf(stderr, "listening on %s://%s%s%s:%u\n", tcp ? "tcp" : "udp", v6 ? "[" : "", ip,
		v6 ? "]" : "", port);
	fflush(stderr);

	int sig;
	while (sigwait(&sigs, &sig))
		;
	_exit(0);
}
