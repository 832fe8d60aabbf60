/* Sockets from inside the guest: TCP and UDP over loopback, Unix socket pairs. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "guest_common.h"

Test(net, tcp_loopback_round_trip, .timeout = 60)
{
	ENTER();
	int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(ls, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	cr_assert_eq(bind(ls, (struct sockaddr *)&a, sizeof(a)), 0);
	cr_assert_eq(listen(ls, 4), 0);
	cr_assert_eq(getsockname(ls, (struct sockaddr *)&a, &al), 0);
	cr_assert_neq(a.sin_port, 0);
	int c = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert_eq(connect(c, (struct sockaddr *)&a, sizeof(a)), 0);
	struct sockaddr_in peer;
	socklen_t pl = sizeof(peer);
	int s = accept4(ls, (struct sockaddr *)&peer, &pl, SOCK_CLOEXEC);
	cr_assert_geq(s, 0);
	cr_expect_eq(pl, sizeof(peer));
	cr_expect_eq(peer.sin_addr.s_addr, htonl(INADDR_LOOPBACK));
	cr_assert_eq(send(c, "ping", 4, 0), 4);
	char buf[8] = { 0 };
	cr_assert_eq(recv(s, buf, sizeof(buf), 0), 4);
	cr_expect_str_eq(buf, "ping");
	cr_assert_eq(write(s, "pong", 4), 4);
	cr_assert_eq(read(c, buf, 4), 4);
	cr_expect_eq(memcmp(buf, "pong", 4), 0);
	close(s);
	close(c);
	close(ls);
}

Test(net, udp_and_unix_pairs, .timeout = 60)
{
	ENTER();
	int u = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	cr_assert_eq(bind(u, (struct sockaddr *)&a, sizeof(a)), 0);
	cr_assert_eq(getsockname(u, (struct sockaddr *)&a, &al), 0);
	cr_assert_eq(sendto(u, "dgram", 5, 0, (struct sockaddr *)&a, sizeof(a)), 5);
	char buf[16] = { 0 };
	struct sockaddr_in from;
	socklen_t fl = sizeof(from);
	cr_assert_eq(recvfrom(u, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl), 5);
	cr_expect_str_eq(buf, "dgram");
	cr_expect_eq(from.sin_port, a.sin_port);
	int sv[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	struct iovec iov = { "msg", 3 };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
	cr_assert_eq(sendmsg(sv[0], &m, 0), 3);
	char rb[4] = { 0 };
	struct iovec riov = { rb, 3 };
	struct msghdr rm = { .msg_iov = &riov, .msg_iovlen = 1 };
	cr_assert_eq(recvmsg(sv[1], &rm, 0), 3);
	cr_expect_str_eq(rb, "msg");
}
