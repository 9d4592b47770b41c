"""Telenor «Time Share» checked the way a tester would: the My Menu walk on a handset, the
two SMS from 125, the received minutes' 72 hours on the simulated clock, and a refusal —
using nothing but the ussdsim pytest plugin's fixtures (``handset``, ``clock``,
``control_api``)."""

SENDER = "359881000001"  # demo: meets every Time Share condition, pays no fee
RECIPIENT, RECIPIENT_TYPED = "359881000011", "0881000011"  # demo: no minutes of its own
OLD_TOP_UP = "359881000024"  # demo: last top-up 40 days ago


def whole_screen(phone, screen):
    """The text of a USSD screen with its pages turned: a long one ends in «0 още» (more)."""
    pages = [screen.text]
    while pages[-1].endswith("\n0 още"):
        pages[-1] = pages[-1].removesuffix("\n0 още")
        pages.append(phone.answer("0").text)
    return " ".join(pages)


def test_time_share_through_my_menu(handset, control_api):
    """*123# → 5 Uslugi → 3 Time Share → number → destination → minutes: done, both told."""
    phone = handset(SENDER)
    assert "5 Uslugi" in phone.dial("*123#").text
    assert "3 Time Share" in phone.answer("5").text
    assert "Номер на получател" in phone.answer("3").text
    assert "2 мрежата на Теленор" in phone.answer(RECIPIENT_TYPED).text
    assert "Брой минути" in phone.answer("2").text
    result = whole_screen(phone, phone.answer("30"))
    assert result.startswith(
        f"Успешно изпратихте 30 мин. към мрежата на Теленор на {RECIPIENT_TYPED}."
    )

    assert phone.sms(sender="125").text.endswith("Наличен кредит: 10,00 лв.")
    assert handset(RECIPIENT).sms(sender="125").text.startswith("Получихте 30 мин.")
    packages = control_api.get(f"/api/v1/subscribers/{RECIPIENT}/packages")["packages"]
    assert [(p["kind"], p["remaining"], p["source"]) for p in packages] == [
        ("voice", 30, "time_share")
    ]


def test_received_minutes_last_72_hours(handset, clock, control_api):
    """The same transfer by SMS; the minutes are there at 71:59 and gone at 72:00."""
    phone = handset(SENDER)
    phone.send_sms("125", f"G,{RECIPIENT_TYPED},30")
    phone.sms(sender="125")
    handset(RECIPIENT).sms(sender="125")
    packages = f"/api/v1/subscribers/{RECIPIENT}/packages"

    clock.advance("71h59m")
    assert [p["remaining"] for p in control_api.get(packages)["packages"]] == [30]
    clock.advance("1m")
    assert control_api.get(packages)["packages"] == []


def test_a_refused_transfer_is_explained_and_costs_nothing(handset, control_api):
    """A sender whose last top-up is 40 days old gets the reason from 125; no money moves."""
    balance = control_api.get(f"/api/v1/subscribers/{OLD_TOP_UP}")["balance"]
    phone = handset(OLD_TOP_UP)
    phone.send_sms("125", "G,0898123456,10")
    assert phone.sms(sender="125").text == (
        "Time Share: отказ. Последното ви презареждане е преди повече от 31 дни."
    )
    assert control_api.get(f"/api/v1/subscribers/{OLD_TOP_UP}")["balance"] == balance
