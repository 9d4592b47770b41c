#!/usr/bin/perl
# Plays a handset through Perl Net::SMPP (Debian libnet-smpp-perl), an SMPP client nobody in
# this project wrote: bind transceiver, dial a USSD string with the ussd_service_op TLV
# (0x0501) and its_session_info (0x1383), read the gateway's deliver_sm, answer it, unbind.
# Prints one JSON object on stdout for tests/e2e/test_interop_netsmpp.py to check (SPEC GW-10).
#
# Usage: ussd_dial.pl HOST PORT SYSTEM_ID PASSWORD MSISDN USSD_STRING ITS_SESSION_INFO
use strict;
use warnings;
use Encode qw(decode);
use IO::Select;
use JSON::PP;
use Net::SMPP;

my ($host, $port, $system_id, $password, $msisdn, $dial, $its) = @ARGV;
die "usage: $0 HOST PORT SYSTEM_ID PASSWORD MSISDN USSD_STRING ITS_SESSION_INFO\n"
    unless defined $its;
my $wait = 5;    # seconds for any one answer from the gateway
my %out = (client => "Net::SMPP $Net::SMPP::VERSION", deliver_sm => []);

sub text_of {
    my ($pdu) = @_;
    my $body = $pdu->{short_message} // '';
    $body = $pdu->{message_payload} if $body eq '' && defined $pdu->{message_payload};
    return $pdu->{data_coding} == 8 ? decode('UTF-16BE', $body) : $body;
}

# Without this handler Net::SMPP would drop a deliver_sm that arrives while it waits for a
# response (wait_pdu discards every PDU it has no handler for): DESIGN.md "Known traps".
sub on_deliver_sm {
    my ($smpp, $pdu) = @_;
    push @{$out{deliver_sm}}, {
        seq             => $pdu->{seq},
        service_type    => $pdu->{service_type},
        source_addr     => $pdu->{source_addr},
        destination_addr => $pdu->{destination_addr},
        esm_class       => $pdu->{esm_class},
        data_coding     => $pdu->{data_coding},
        text            => text_of($pdu),
        ussd_service_op => defined $pdu->{ussd_service_op} ? ord($pdu->{ussd_service_op}) : undef,
        its_session_info => defined $pdu->{its_session_info}
            ? unpack('H*', $pdu->{its_session_info}) : undef,
        body_hex        => unpack('H*', $pdu->{data}),
    };
    $smpp->deliver_sm_resp(message_id => '', seq => $pdu->{seq});
}

my ($smpp, $bind) = Net::SMPP->new_transceiver(
    $host,
    port      => $port,
    timeout   => $wait,
    system_id => $system_id,
    password  => $password,
    handlers  => {
        Net::SMPP::CMD_enquire_link, \&Net::SMPP::handle_enquire_link,
        Net::SMPP::CMD_deliver_sm,   \&on_deliver_sm,
    },
);
die "connect to $host:$port failed: $!\n" unless $smpp;
die "no bind_transceiver_resp\n" unless $bind;
$out{bind_status} = $bind->{status};
$out{bind_system_id} = $bind->{system_id};

my $submit = $smpp->submit_sm(
    service_type     => 'USSD',
    source_addr_ton  => 1,
    source_addr_npi  => 1,
    source_addr      => $msisdn,
    destination_addr => $dial =~ s/\D//gr,
    short_message    => $dial,
    0x0501           => 1,    # ussd_service_op by numeric tag: PSSR indication
    its_session_info => pack('H*', $its),
) or die "no submit_sm_resp\n";
$out{submit_status} = $submit->{status};
$out{submit_message_id} = $submit->{message_id};

# The answer may already have been handled while submit_sm waited for its response.
my $select = IO::Select->new($smpp);
while (!grep { defined $_->{ussd_service_op} } @{$out{deliver_sm}}) {
    die "no deliver_sm within ${wait}s\n" unless $select->can_read($wait);
    my $pdu = $smpp->read_pdu() or die "connection lost while waiting for deliver_sm\n";
    if ($pdu->{cmd} == Net::SMPP::CMD_deliver_sm) {
        on_deliver_sm($smpp, $pdu);
    } elsif ($pdu->{cmd} == Net::SMPP::CMD_enquire_link) {
        Net::SMPP::handle_enquire_link($smpp, $pdu);
    } else {
        die sprintf("unexpected PDU 0x%08x while waiting for deliver_sm\n", $pdu->{cmd});
    }
}

my $unbind = $smpp->unbind() or die "no unbind_resp\n";
$out{unbind_status} = $unbind->{status};
$out{closed_after_unbind} = $select->can_read($wait) && !$smpp->sysread(my $buf, 1) ? 1 : 0;

print JSON::PP->new->utf8->canonical->encode(\%out), "\n";
