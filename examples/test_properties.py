"""A property test as a tester writes one with ussdsim's public hypothesis strategies
(``parsers.strategies``): whatever malformed command a Telenor subscriber texts to 125, the
answer is one SMS from 125, and it costs nothing.

The examples of one test share its gateway (the fixtures are function-scoped), so the
health check about that is silenced and the property is one that earlier examples cannot
break: a refused command changes nothing.
"""

from hypothesis import HealthCheck, given, settings

from parsers import strategies as ussd_st

SENDER = "359881000001"  # demo: a Telenor prepaid subscriber with 10,00 лв.

refused_to_125 = ussd_st.sms_texts("telenor", valid=False).filter(lambda pair: pair[1] == "125")


@settings(
    max_examples=15,
    deadline=None,  # real sockets: a slow CI machine must not fail the property
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(pair=refused_to_125)
def test_every_malformed_command_to_125_gets_one_free_answer(handset, control_api, pair):
    text, number = pair
    phone = handset(SENDER)
    balance = control_api.get(f"/api/v1/subscribers/{SENDER}")["balance"]

    phone.send_sms(number, text)

    answer = phone.sms(sender="125")
    assert answer.text, f"an empty answer to {text!r}"
    assert phone.drain(0.1) == [], f"more than one answer to {text!r}"
    assert control_api.get(f"/api/v1/subscribers/{SENDER}")["balance"] == balance
