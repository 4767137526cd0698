"""What members are told, in their community's language. French speaks to the member as "tu"."""

from __future__ import annotations

from datetime import datetime, timezone

SUPPORTED_LOCALES = ("en", "fr")

_TEMPLATES: dict[str, dict[str, str]] = {
    "grace_started": {
        "en": (
            "Hi! Your payment for {plan} in {community} didn't go through. You keep your access "
            "until {grace_end}. Update your payment method here so nothing changes: {manage_url}"
        ),
        "fr": (
            "Salut ! Ton paiement pour {plan} dans {community} n'est pas passé. Tu gardes ton accès "
            "jusqu'au {grace_end}. Mets à jour ton moyen de paiement ici et rien ne change : {manage_url}"
        ),
    },
    "grace_ending": {
        "en": (
            "Reminder: your access to {community} ends on {grace_end} unless your payment for "
            "{plan} goes through. You can fix it here: {manage_url}"
        ),
        "fr": (
            "Petit rappel : ton accès à {community} s'arrête le {grace_end} si ton paiement pour "
            "{plan} ne passe pas d'ici là. Tu peux régler ça ici : {manage_url}"
        ),
    },
    "access_ended.grace_expired.cancel": {
        "en": (
            "Your access to {community} has ended because the payment for {plan} could not be "
            "collected, and your subscription was cancelled so you won't be charged again. "
            "You're welcome back any time: {join_url}"
        ),
        "fr": (
            "Ton accès à {community} est terminé : le paiement pour {plan} n'a pas pu être encaissé, "
            "alors ton abonnement a été annulé et tu ne seras plus prélevé. "
            "Tu peux revenir quand tu veux : {join_url}"
        ),
    },
    "access_ended.grace_expired.keep_retrying": {
        "en": (
            "Your access to {community} is paused because the payment for {plan} could not be "
            "collected. Stripe will keep trying your card; as soon as a payment succeeds you get "
            "your access back automatically. To stop, cancel from your billing page: {manage_url}"
        ),
        "fr": (
            "Ton accès à {community} est suspendu : le paiement pour {plan} n'a pas pu être encaissé. "
            "Stripe va réessayer ta carte ; dès qu'un paiement passe, tu retrouves ton accès tout "
            "seul. Pour arrêter, annule depuis ta page de facturation : {manage_url}"
        ),
    },
    "access_ended.cancelled_at_period_end": {
        "en": (
            "Your subscription to {plan} ended as planned, so your access to {community} has "
            "ended too. Thanks for being here! Come back any time: {join_url}"
        ),
        "fr": (
            "Ton abonnement {plan} est arrivé à son terme comme prévu, donc ton accès à {community} "
            "s'arrête aussi. Merci d'avoir été là ! Tu peux revenir quand tu veux : {join_url}"
        ),
    },
    # No word on future charges here: a refunded subscription may still be live in Stripe.
    "access_ended.refunded": {
        "en": (
            "Your payment for {plan} was refunded, so your access to {community} has ended. "
            "Come back any time: {join_url}"
        ),
        "fr": (
            "Ton paiement pour {plan} a été remboursé, donc ton accès à {community} est terminé. "
            "Tu peux revenir quand tu veux : {join_url}"
        ),
    },
    "access_ended.dispute": {
        "en": (
            "Your payment for {plan} is disputed with your bank, so your access to {community} is "
            "suspended. If the dispute is a mistake, ask your bank to withdraw it: your access comes "
            "back as soon as it is settled."
        ),
        "fr": (
            "Ton paiement pour {plan} est contesté auprès de ta banque, donc ton accès à {community} "
            "est suspendu. Si c'est une erreur, demande à ta banque d'annuler la contestation : ton "
            "accès revient dès qu'elle est close."
        ),
    },
    "access_ended": {
        "en": (
            "Your access to {community} has ended ({reason}). You won't be charged for it any "
            "more. Come back any time: {join_url}"
        ),
        "fr": (
            "Ton accès à {community} est terminé ({reason}). Tu ne seras plus prélevé pour ça. "
            "Tu peux revenir quand tu veux : {join_url}"
        ),
    },
    "invite": {
        "en": "Welcome to {community}! Here is your personal invite (it works for you only): {invite_url}",
        "fr": "Bienvenue dans {community} ! Voici ton invitation personnelle (elle ne marche que pour toi) : {invite_url}",
    },
    "payment_action_required": {
        "en": (
            "Your bank needs you to confirm the payment for {plan} in {community}. "
            "It takes a minute: {invoice_url}"
        ),
        "fr": (
            "Ta banque te demande de confirmer le paiement pour {plan} dans {community}. "
            "Ça prend une minute : {invoice_url}"
        ),
    },
}

# Answers to the /access slash command (ephemeral: only the member sees them).
_TEMPLATES.update({
    "access_command.resync": {
        "en": "Got it! Membergate is checking your access to {community} now: if your membership is active, "
              "your role comes back within a minute. Still nothing? Open your membership page: {manage_url}",
        "fr": "C'est noté ! Membergate vérifie ton accès à {community} : si ton abonnement est actif, "
              "ton rôle revient d'ici une minute. Toujours rien ? Ouvre ta page d'abonnement : {manage_url}",
    },
    "access_command.unknown": {
        "en": "This Discord account isn't linked to a membership of {community}. Join or reconnect your account "
              "from the join link the creator shared, then try /access again.",
        "fr": "Ce compte Discord n'est lié à aucun abonnement à {community}. Rejoins ou reconnecte ton compte "
              "depuis le lien d'inscription partagé par le créateur, puis refais /access.",
    },
})

_REASONS = {
    "canceled": {"en": "subscription cancelled", "fr": "abonnement annulé"},
    "unpaid": {"en": "payment not received", "fr": "paiement non reçu"},
    "paused": {"en": "subscription paused", "fr": "abonnement en pause"},
    "incomplete_expired": {"en": "first payment not completed", "fr": "premier paiement non finalisé"},
    "payment_failed": {"en": "payment failed", "fr": "paiement refusé"},
    "pass_expired": {"en": "your pass has run its course", "fr": "ton pass est arrivé à son terme"},
    "refunded": {"en": "payment refunded", "fr": "paiement remboursé"},
    "dispute": {"en": "payment disputed", "fr": "paiement contesté"},
}


def template_key(kind: str, reason: str = "", on_grace_end: str = "") -> str:
    if kind != "access_ended":
        return kind
    if reason == "grace_expired":
        return f"access_ended.grace_expired.{on_grace_end or 'cancel'}"
    if reason in ("cancelled_at_period_end", "refunded", "dispute"):
        return f"access_ended.{reason}"
    return "access_ended"


def format_date(epoch: int, locale: str) -> str:
    moment = datetime.fromtimestamp(epoch, tz=timezone.utc)
    if locale == "fr":
        return moment.strftime("%d/%m/%Y à %H:%M UTC")
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def render(key: str, locale: str, **context: str) -> str:
    templates = _TEMPLATES.get(key) or _TEMPLATES[key.split(".")[0]]
    text = templates.get(locale) or templates["en"]
    reason = context.get("reason", "")
    if reason in _REASONS:
        context = {**context, "reason": _REASONS[reason].get(locale, _REASONS[reason]["en"])}
    return text.format_map(_Defaults(context))


class _Defaults(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "—"
