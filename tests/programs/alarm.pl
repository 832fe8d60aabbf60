# A Perl alarm handler (dropped silently before signals reached the guest).
my $hit = 0;
$SIG{ALRM} = sub { $hit++ };
alarm 1;
sleep 3;
print "perl alarm hit=$hit\n";
exit($hit == 1 ? 0 : 3);
