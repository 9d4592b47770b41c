"""MTS «Общий пакет» checked the way a tester would: an invitation by USSD, the SMS from 434
and the «ДА» answer, the group seen through the control API, and an invitation left
unanswered for an hour of simulated time."""

import pytest

INITIATOR = "79160000001"  # demo: «Наш Smart» with money for the fee
INVITED = "79160000015"  # demo: on «Smart», so invited by SMS and answers «ДА»


def test_invite_by_ussd_and_accept_by_sms(handset, control_api):
    """*434*1*number# invites; the SMS from 434 is answered «ДА#0001»; both are told."""
    initiator, invited = handset(INITIATOR), handset(INVITED)
    screen = initiator.dial(f"*434*1*{INVITED}#")
    assert screen.ends_dialogue
    assert screen.text.startswith(f"Приглашение отправлено абоненту {INVITED}.")

    invitation = invited.sms(sender="434").text
    assert f"Абонент {INITIATOR} приглашает вас в группу «Общий пакет»" in invitation
    assert "ДА#0001" in invitation

    invited.send_sms("434", "ДА#0001")
    assert invited.sms(sender="434").text.startswith(
        f"Вы участник группы «Общий пакет» абонента {INITIATOR}"
    )
    assert initiator.sms(sender="434").text == (
        f"Абонент {INVITED} присоединился к вашей группе «Общий пакет». Участников: 1 из 5."
    )
    group = control_api.get(f"/api/v1/mts/shared-bundle/{INITIATOR}")["group"]
    assert [p["msisdn"] for p in group["participants"]] == [INVITED]
    assert group["max_participants"] == 5


@pytest.mark.ussdsim(start="2026-03-02T10:00:00+03:00")  # a Monday morning in Moscow
def test_an_unanswered_invitation_lapses_after_an_hour(handset, clock):
    """Nothing at 59 minutes; at 60 the initiator is told, and a late «ДА» finds nothing."""
    initiator, invited = handset(INITIATOR), handset(INVITED)
    initiator.dial(f"*434*1*{INVITED}#")
    invited.sms(sender="434")

    clock.advance("59m")
    assert initiator.drain(0.2) == []
    clock.advance("1m")
    assert initiator.sms(sender="434").text.startswith(
        f"Абонент {INVITED} не ответил на приглашение в группу «Общий пакет» в течение часа"
    )
    invited.send_sms("434", "ДА")
    assert invited.sms(sender="434").text.startswith("У вас нет действующих приглашений")
