#!/usr/bin/perl
# A trivial HTTP server for the cluster's pod test (tests/k8s_e2e/test_pod.py): answers every request
# with the pod's name and logs each one to stdout (read back through the API's pod log endpoint).
use strict;
use warnings;
use IO::Socket::INET;
$| = 1;
# Port 8080, fixed: Kubernetes' service links put HELLO_PORT=tcp://... into this pod's environment.
my $port = 8080;
my $server = IO::Socket::INET->new(LocalPort => $port, Listen => 16, ReuseAddr => 1, Proto => 'tcp')
  or die "cannot listen on $port: $!\n";
print "hello-server listening on $port as uid $<\n";
while (my $client = $server->accept) {
  my $request = <$client> // '';
  while (my $line = <$client>) { last if $line =~ /^\r?\n$/ }
  my $body = "hello from $ENV{HOSTNAME}\n";
  print $client "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " . length($body) . "\r\n\r\n$body";
  close $client;
  $request =~ s/\s+$//;
  print "served: $request\n";
}
