"""Every word a member reads, one catalogue per language; French speaks to the member as "tu"."""

from __future__ import annotations

from collections.abc import Mapping

SUPPORTED_LOCALES = ("en", "fr")

# Keys: page.* the member pages, state.* an access state in words, err.* error pages, msg.* the
# messages sent on a platform (grace, invites...), reason.* why an access ended.
EN: dict[str, str] = {
    'page.paid': 'Payment received. Your access arrives within seconds; you can close this page.',
    'page.your_access': 'Your access: {states}',
    'page.manage_connect': 'Connect the Discord account you subscribed with to manage your billing (card, invoices, cancellation).',
    'page.step1': 'Step 1: connect the Discord account that should get access, so it goes to the right person.',
    'page.connect': 'Connect Discord',
    'page.connected': "Connected Discord account: {user} (<a href='{connect}'>use another</a>)",
    'page.no_billing': "We found no subscription for this Discord account, so there is no billing to manage yet. If you subscribed with another Discord account, <a href='{connect}'>connect that one</a> instead.",
    'page.pay': 'Continue to payment',
    'page.grace': "Your last payment for {plan} didn't go through. You keep your access{until}; update your card below and nothing changes.",
    'page.until': ' until {date}',
    'page.active': "You're a member: your {plan} subscription is active.",
    'page.manage': 'Manage billing (card, invoices, cancel)',
    'page.switched': 'Your plan is changing to {plan}: same subscription, prorated by Stripe. Your access follows within seconds.',
    'page.switch_from': "You're on {current}. Switching to {plan} keeps your subscription: Stripe prorates the difference, nobody is charged twice.",
    'page.switch': 'Switch to {plan}',
    'msg.grace_started': "Hi! Your payment for {plan} in {community} didn't go through. You keep your access until {grace_end}. Update your payment method here so nothing changes: {manage_url}",
    'msg.grace_ending': 'Reminder: your access to {community} ends on {grace_end} unless your payment for {plan} goes through. You can fix it here: {manage_url}',
    'msg.access_ended.grace_expired.cancel': "Your access to {community} has ended because the payment for {plan} could not be collected, and your subscription was cancelled so you won't be charged again. You're welcome back any time: {join_url}",
    'msg.access_ended.grace_expired.keep_retrying': 'Your access to {community} is paused because the payment for {plan} could not be collected. Stripe will keep trying your card; as soon as a payment succeeds you get your access back automatically. To stop, cancel from your billing page: {manage_url}',
    'msg.access_ended.cancelled_at_period_end': 'Your subscription to {plan} ended as planned, so your access to {community} has ended too. Thanks for being here! Come back any time: {join_url}',
    'msg.access_ended': "Your access to {community} has ended ({reason}). You won't be charged for it any more. Come back any time: {join_url}",
    'msg.invite': 'Welcome to {community}! Here is your personal invite (it works for you only): {invite_url}',
    'msg.payment_action_required': 'Your bank needs you to confirm the payment for {plan} in {community}. It takes a minute: {invoice_url}',
    'reason.canceled': 'subscription cancelled',
    'reason.unpaid': 'payment not received',
    'reason.paused': 'subscription paused',
    'reason.incomplete_expired': 'first payment not completed',
    'reason.payment_failed': 'payment failed',
    'reason.pass_expired': 'your pass has run its course',
    'reason.refunded': 'payment refunded',
    'reason.dispute': 'payment disputed',
    "page.included": "What's included",
    "page.prices": "Prices",
    "page.choose_price": "Choose how you pay",
    "page.per.day": "{amount} / day",
    "page.per.week": "{amount} / week",
    "page.per.month": "{amount} / month",
    "page.per.year": "{amount} / year",
    "page.every": "{amount} every {count} {unit}",
    "unit.day": "days",
    "unit.week": "weeks",
    "unit.month": "months",
    "unit.year": "years",
    "page.once": "{amount}, paid once",
    "page.custom_amount": "you choose the amount",
    "page.trial": "{days}-day free trial",
    "page.no_prices": "Prices could not be loaded right now; you will see the price on the payment page before paying.",
    "page.places": "Where this plan gets you",
    "page.place_state": "Your access to {place}: {state}",
    "page.step_discord": "Connect the Discord account that should get access, so it goes to the right person.",
    "page.step_invite": "{place} ({platform}): after payment you get a personal invite link here and in your messages.",
    "page.step_telegram": "Open our Telegram bot and tap Start. It links your Telegram account and sends you the "
    "payment button; after paying, it sends your personal invite to the group.",
    "page.connect_telegram": "Continue with Telegram",
    "page.connected_telegram": "Your Telegram account is linked: your invite goes to it.",
    "page.step_later": "{place} ({platform}): the creator adds you after payment; you'll get a message.",
    "page.next_title": "What happens next",
    "page.next_discord": "{place}: your Discord account {user} gets its role within seconds; open Discord to see the new channels.",
    "page.next_invite": "{place}: your personal invite is on its way (it works for you only).",
    "page.next_invite_ready": "{place}: <a href='{url}'>open your personal invite</a> (it works for you only).",
    "page.next_other": "{place}: the creator adds you and you'll get a message.",
    "page.fallback": "Nothing after a few minutes? Reload this page to see where each access stands, or <a href='{manage}'>manage your membership</a>.",
    "page.manage_title": "Your membership",
    "page.relink": "Connect another Discord account",
    "page.lang_switch": "Français",
    "page.your_discord": "your Discord account",
    "state.granted": "active",
    "state.pending": "on its way",
    "state.retrying": "on its way (we're retrying)",
    "state.awaiting_identity": "waiting for you to connect your account",
    "state.invited": "invite sent: open it to come in",
    "state.revoked": "ended",
    "state.none": "not active",
    "state.failed": "blocked for now: the creator has been told",
    "err.plan_not_found.title": "Plan not found",
    "err.plan_not_found": "This join link is not valid; ask the creator for the current one.",
    "err.link.title": "This link doesn't work",
    "err.link": "This link is not valid; ask the creator for a new one.",
    "err.discord.title": "Discord not connected",
    "err.discord.cancelled": "You cancelled the Discord authorization; open the join link again to retry.",
    "err.discord.incomplete": "The link is incomplete; open the join link again to retry.",
    "err.checkout.title": "We couldn't start your payment",
    "err.portal.title": "We couldn't open your billing page",
    "page.discord_connected.title": "Discord connected",
    "page.discord_connected": "Your Discord account is connected; open your join link to choose a plan.",
    'msg.access_ended.refunded': 'Your payment for {plan} was refunded, so your access to {community} has ended. Come back any time: {join_url}',
    'msg.access_ended.dispute': 'Your payment for {plan} is disputed with your bank, so your access to {community} is suspended. If the dispute is a mistake, ask your bank to withdraw it: your access comes back as soon as it is settled.',
    'msg.access_command.resync': 'Got it! Membergate is checking your access to {community} now: if your membership is active, your role comes back within a minute. Still nothing? Open your membership page: {manage_url}',
    'msg.access_command.unknown': "This Discord account isn't linked to a membership of {community}. Join or reconnect your account from the join link the creator shared, then try /access again.",
    'err.plan_closed.title': 'This offer is closed',
    'err.plan_closed': 'The creator no longer sells this plan; ask them for the current offer. Members who have it keep their access until it ends.',
    'page.code_label': 'Have an access code?',
    'page.code_redeem': 'Use the code',
    'page.redeemed': 'Code accepted: your access arrives within seconds.',
    'err.code.title': "This code doesn't work",
    'err.code_invalid': "We don't know this code. Check it (capitals and dashes don't matter) or ask the creator for a new one.",
    'err.code_used': 'This code has been used as many times as it allows. Ask the creator for a new one, or join by paying on the join page.',
    'err.code_expired': 'This code has expired. Ask the creator for a new one, or join by paying on the join page.',
    'err.code_other_plan': 'This code is for another offer. Open the join link the creator sent with it and type it there.',
    'err.code_identity': 'Connect your account on the join page first, then type the code: it gives access to the account you connect.',
}

FR: dict[str, str] = {
    'page.paid': 'Paiement reçu ! Ton accès arrive dans quelques secondes ; tu peux fermer cette page.',
    'page.your_access': 'Ton accès : {states}',
    'page.manage_connect': "Connecte le compte Discord avec lequel tu t'es abonné pour gérer ta facturation (carte, factures, résiliation).",
    'page.step1': "Étape 1 : connecte le compte Discord qui doit recevoir l'accès, pour qu'il arrive à la bonne personne.",
    'page.connect': 'Connecter Discord',
    'page.connected': "Compte Discord connecté : {user} (<a href='{connect}'>en utiliser un autre</a>)",
    'page.no_billing': "On n'a trouvé aucun abonnement pour ce compte Discord, donc rien à gérer pour l'instant. Si tu t'es abonné avec un autre compte Discord, <a href='{connect}'>connecte plutôt celui-là</a>.",
    'page.pay': 'Continuer vers le paiement',
    'page.grace': "Ton dernier paiement pour {plan} n'est pas passé. Tu gardes ton accès{until} ; mets à jour ta carte ci-dessous et rien ne change.",
    'page.until': " jusqu'au {date}",
    'page.active': 'Tu es membre : ton abonnement {plan} est actif.',
    'page.manage': 'Gérer ma facturation (carte, factures, résiliation)',
    'page.switched': 'Ta formule passe à {plan} : même abonnement, Stripe calcule le prorata. Ton accès suit dans quelques secondes.',
    'page.switch_from': 'Tu as actuellement {current}. Passer à {plan} garde ton abonnement : Stripe calcule le prorata, tu ne paies jamais deux fois.',
    'page.switch': 'Passer à {plan}',
    'msg.grace_started': "Salut ! Ton paiement pour {plan} dans {community} n'est pas passé. Tu gardes ton accès jusqu'au {grace_end}. Mets à jour ton moyen de paiement ici et rien ne change : {manage_url}",
    'msg.grace_ending': "Petit rappel : ton accès à {community} s'arrête le {grace_end} si ton paiement pour {plan} ne passe pas d'ici là. Tu peux régler ça ici : {manage_url}",
    'msg.access_ended.grace_expired.cancel': "Ton accès à {community} est terminé : le paiement pour {plan} n'a pas pu être encaissé, alors ton abonnement a été annulé et tu ne seras plus prélevé. Tu peux revenir quand tu veux : {join_url}",
    'msg.access_ended.grace_expired.keep_retrying': "Ton accès à {community} est suspendu : le paiement pour {plan} n'a pas pu être encaissé. Stripe va réessayer ta carte ; dès qu'un paiement passe, tu retrouves ton accès tout seul. Pour arrêter, annule depuis ta page de facturation : {manage_url}",
    'msg.access_ended.cancelled_at_period_end': "Ton abonnement {plan} est arrivé à son terme comme prévu, donc ton accès à {community} s'arrête aussi. Merci d'avoir été là ! Tu peux revenir quand tu veux : {join_url}",
    'msg.access_ended': 'Ton accès à {community} est terminé ({reason}). Tu ne seras plus prélevé pour ça. Tu peux revenir quand tu veux : {join_url}',
    'msg.invite': 'Bienvenue dans {community} ! Voici ton invitation personnelle (elle ne marche que pour toi) : {invite_url}',
    'msg.payment_action_required': 'Ta banque te demande de confirmer le paiement pour {plan} dans {community}. Ça prend une minute : {invoice_url}',
    'reason.canceled': 'abonnement annulé',
    'reason.unpaid': 'paiement non reçu',
    'reason.paused': 'abonnement en pause',
    'reason.incomplete_expired': 'premier paiement non finalisé',
    'reason.payment_failed': 'paiement refusé',
    'reason.pass_expired': 'ton pass est arrivé à son terme',
    'reason.refunded': 'paiement remboursé',
    'reason.dispute': 'paiement contesté',
    "page.included": "Ce qui est inclus",
    "page.prices": "Tarifs",
    "page.choose_price": "Choisis comment tu paies",
    "page.per.day": "{amount} / jour",
    "page.per.week": "{amount} / semaine",
    "page.per.month": "{amount} / mois",
    "page.per.year": "{amount} / an",
    "page.every": "{amount} tous les {count} {unit}",
    "unit.day": "jours",
    "unit.week": "semaines",
    "unit.month": "mois",
    "unit.year": "ans",
    "page.once": "{amount}, en une fois",
    "page.custom_amount": "tu choisis le montant",
    "page.trial": "{days} jours d'essai gratuits",
    "page.no_prices": "On n'arrive pas à charger les prix pour l'instant ; tu verras le prix sur la page de paiement avant de payer.",
    "page.places": "Ce que cette formule t'ouvre",
    "page.place_state": "Ton accès à {place} : {state}",
    "page.step_discord": "Connecte le compte Discord qui doit recevoir l'accès, pour qu'il arrive à la bonne personne.",
    "page.step_invite": "{place} ({platform}) : après le paiement, tu reçois ici et en message un lien d'invitation personnel.",
    "page.step_telegram": "Ouvre notre bot Telegram et appuie sur Démarrer. Il relie ton compte Telegram et t'envoie "
    "le bouton de paiement ; après le paiement, il t'envoie ton invitation personnelle au groupe.",
    "page.connect_telegram": "Continuer avec Telegram",
    "page.connected_telegram": "Ton compte Telegram est relié : ton invitation lui sera envoyée.",
    "page.step_later": "{place} ({platform}) : le créateur t'ajoute après le paiement ; tu recevras un message.",
    "page.next_title": "Et maintenant ?",
    "page.next_discord": "{place} : ton compte Discord {user} reçoit son rôle dans quelques secondes ; ouvre Discord pour voir les nouveaux salons.",
    "page.next_invite": "{place} : ton invitation personnelle arrive (elle ne marche que pour toi).",
    "page.next_invite_ready": "{place} : <a href='{url}'>ouvre ton invitation personnelle</a> (elle ne marche que pour toi).",
    "page.next_other": "{place} : le créateur t'ajoute et tu recevras un message.",
    "page.fallback": "Rien après quelques minutes ? Recharge cette page pour voir où en est chaque accès, ou <a href='{manage}'>gère ton abonnement</a>.",
    "page.manage_title": "Ton abonnement",
    "page.relink": "Connecter un autre compte Discord",
    "page.lang_switch": "English",
    "page.your_discord": "ton compte Discord",
    "state.granted": "actif",
    "state.pending": "en cours",
    "state.retrying": "en cours (on réessaie)",
    "state.awaiting_identity": "en attente : connecte ton compte",
    "state.invited": "invitation envoyée : ouvre-la pour entrer",
    "state.revoked": "terminé",
    "state.none": "pas actif",
    "state.failed": "bloqué pour l'instant : le créateur est prévenu",
    "err.plan_not_found.title": "Formule introuvable",
    "err.plan_not_found": "Ce lien d'inscription n'est pas valide ; demande le lien actuel au créateur.",
    "err.link.title": "Ce lien ne marche pas",
    "err.link": "Ce lien n'est pas valide ; demande-en un nouveau au créateur.",
    "err.discord.title": "Discord non connecté",
    "err.discord.cancelled": "Tu as annulé l'autorisation Discord ; rouvre le lien d'inscription pour réessayer.",
    "err.discord.incomplete": "Le lien est incomplet ; rouvre le lien d'inscription pour réessayer.",
    "err.checkout.title": "On n'a pas pu lancer ton paiement",
    "err.portal.title": "On n'a pas pu ouvrir ta page de facturation",
    "page.discord_connected.title": "Discord connecté",
    "page.discord_connected": "Ton compte Discord est connecté ; ouvre ton lien d'inscription pour choisir une formule.",
    'msg.access_ended.refunded': 'Ton paiement pour {plan} a été remboursé, donc ton accès à {community} est terminé. Tu peux revenir quand tu veux : {join_url}',
    'msg.access_ended.dispute': "Ton paiement pour {plan} est contesté auprès de ta banque, donc ton accès à {community} est suspendu. Si c'est une erreur, demande à ta banque d'annuler la contestation : ton accès revient dès qu'elle est close.",
    'msg.access_command.resync': "C'est noté ! Membergate vérifie ton accès à {community} : si ton abonnement est actif, ton rôle revient d'ici une minute. Toujours rien ? Ouvre ta page d'abonnement : {manage_url}",
    'msg.access_command.unknown': "Ce compte Discord n'est lié à aucun abonnement à {community}. Rejoins ou reconnecte ton compte depuis le lien d'inscription partagé par le créateur, puis refais /access.",
    'err.plan_closed.title': 'Cette offre est fermée',
    'err.plan_closed': "Le créateur ne vend plus cette formule ; demande-lui l'offre du moment. Celles et ceux qui l'ont gardent leur accès jusqu'à son terme.",
    'page.code_label': "Tu as un code d'accès ?",
    'page.code_redeem': 'Utiliser le code',
    'page.redeemed': 'Code accepté : ton accès arrive dans quelques secondes.',
    'err.code.title': 'Ce code ne fonctionne pas',
    'err.code_invalid': "On ne connaît pas ce code. Vérifie-le (majuscules et tirets ne comptent pas) ou demande-en un nouveau au créateur.",
    'err.code_used': "Ce code a déjà servi autant de fois que prévu. Demande-en un nouveau au créateur, ou rejoins en payant sur la page d'inscription.",
    'err.code_expired': "Ce code a expiré. Demande-en un nouveau au créateur, ou rejoins en payant sur la page d'inscription.",
    'err.code_other_plan': "Ce code est pour une autre offre. Ouvre le lien d'inscription que le créateur t'a envoyé avec et tape-le là.",
    'err.code_identity': "Connecte d'abord ton compte sur la page d'inscription, puis tape le code : il donne l'accès au compte que tu connectes.",
}

CATALOGUES: dict[str, dict[str, str]] = {"en": EN, "fr": FR}


def text(locale: str, key: str) -> str:
    """The text in the member's language; English when a key is not translated yet."""
    return CATALOGUES.get(locale, EN).get(key) or EN[key]


def choose_locale(switch: str | None, community_locale: str | None, accept_language: str | None = None) -> str:
    """The switch (?lang=) first, then the community's language, then the browser's, then English."""
    for candidate in (switch, community_locale):
        if candidate and candidate.lower()[:2] in SUPPORTED_LOCALES:
            return candidate.lower()[:2]
    for tag in _accepted(accept_language or ""):
        if tag[:2] in SUPPORTED_LOCALES:
            return tag[:2]
    return "en"


def _accepted(header: str) -> list[str]:
    """Accept-Language tags, highest q first (malformed parts ignored)."""
    weighted = []
    for part in header[:500].split(","):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                continue
        if tag:
            weighted.append((q, tag.lower()))
    return [tag for q, tag in sorted(weighted, key=lambda w: -w[0]) if q > 0]


def check_catalogues(catalogues: Mapping[str, Mapping[str, str]] = CATALOGUES) -> list[str]:
    """Keys some language lacks (the tests keep this empty)."""
    keys = set().union(*(c.keys() for c in catalogues.values()))
    return sorted(f"{lang}:{k}" for lang, c in catalogues.items() for k in keys - c.keys())
