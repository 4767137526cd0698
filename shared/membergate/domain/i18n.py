"""Every word a member or the creator reads, one catalogue per language; French speaks to them as "tu"."""

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
    'reason.grant_expired': 'the access you were given has run its course',
    'reason.revoked': 'the creator ended the access they gave you',
    'reason.customer_deleted': 'your billing account was closed',
    'reason.price_not_sold': 'your subscription moved to a price this plan does not sell',
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
    "page.connected_telegram": "Telegram account linked: {user}. Your invite goes to it.",
    "page.your_telegram": "your Telegram account",
    "page.step_later": "{place} ({platform}): the creator adds you after payment; you'll get a message.",
    "page.next_title": "What happens next",
    "page.next_discord": "{place}: your Discord account {user} gets its role within seconds; open Discord to see the new channels.",
    "page.next_invite": "{place}: your personal invite is on its way (it works for you only).",
    "page.next_invite_ready": "{place}: <a href='{url}'>open your personal invite</a> (it works for you only).",
    "page.next_other": "{place}: the creator adds you and you'll get a message.",
    "page.fallback": "Nothing after a few minutes? Reload this page to see where each access stands, or <a href='{manage}'>manage your membership</a>.",
    "page.manage_title": "Your membership",
    "page.relink": "Use another Discord account",
    "page.connected_as": "Connected Discord account: {user}",
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
    # tg.*: what the Telegram bot answers in the member's private chat.
    "tg.bound": "Your Telegram account is linked. Tap the button to pay; right after, I send you your personal invite "
    "to the group here. The button works once, for 30 minutes.",
    "tg.pay_button": "Continue to payment",
    "tg.linked_resync": "Your Telegram account is linked to your membership, and I'm checking your access now. "
    "To pay or manage your membership, open the join page again.",
    "tg.expired": "This link has expired or was already used. Open the join page again and tap "
    "'Continue with Telegram' to get a new one.",
    "tg.conflict": "This Telegram account already has its own membership here. Open the join page from the "
    "browser you used for it, or ask the creator to move your subscription.",
    "tg.relinked": "Done: your membership now uses this Telegram account, and the old one has lost its access. "
    "Your personal invite to the group follows here in a moment.",
    "tg.relink_same": "This Telegram account already holds your membership: nothing changes.",
    "tg.relink_taken": "This Telegram account already has its own membership here, so I can't move yours to it. "
    "Choose another account, or ask the creator to move your membership.",
    "tg.manage_button": "Open my membership",
    # The manage page's relink (member pages).
    "page.relink_telegram": "Use another Telegram account",
    "page.relinked": "Done: your membership now uses {user}. The previous account has lost its access.",
    "page.relink_same": "That is the account your membership already uses: nothing changed.",
    "page.relinked_partial": "Your membership now uses {user}. The previous account could not be removed everywhere: if it still has access, ask the creator to remove it.",
    "err.relink.title": "We couldn't change your account",
    # checkout.*: the text Stripe Checkout shows beside the pay button (consumer law).
    "checkout.waiver": "By paying, you ask for immediate access to {place} and acknowledge that you thereby "
    "give up your 14-day right of withdrawal.",
    "checkout.terms": "Terms: {url}",
    "checkout.privacy": "Privacy policy: {url}",
    "page.waiver": "Your access starts as soon as you pay: by paying you ask for that and give up your 14-day right of withdrawal.",
    "page.accept_terms": "By paying you accept the <a href='{url}'>terms</a>.",
    "page.privacy_link": "<a href='{url}'>Privacy policy</a>",
    "page.from": "your choice, from {amount}",
    "page.terms_link": "<a href='{url}'>Terms</a>",
    "msg.whatsapp.join": "Join {plan} - {code}",
    "msg.whatsapp.bound": "Your WhatsApp number is connected. Pay here to join {plan} (this link works once, for 30 minutes): {url}",
    "msg.whatsapp.no_code": "This message carries no valid join code (a code works once, for 30 minutes). Open the join page again and use its WhatsApp button to get a new one.",
    "msg.whatsapp.taken": "This WhatsApp number already belongs to another membership here; write from the number you joined with, or ask the creator for help.",
    "msg.invite_group": "Welcome to {community}! Here is the group's invite link: {invite_url} It is for you: please don't share it.",
    # A free community moving to paid (services/migration.py): the personal offer, and the group post.
    "msg.migration_offer": "{community} is becoming a paid community, and as one of its first members you get the founder price: {plan}. Your access stays open until {date}; to stay after that, take the offer here (this link is yours: your account is already connected): {offer_url}{note}",
    "msg.migration_post": "{community} is becoming a paid community. Every member here gets the founder price, {plan}, until {date}; after that date, only members access this space. Take the offer here: {join_url}{note}",
    # The offer's price beside its name (domain/migration.py::offer_words); the regular price when the migration names one.
    "msg.migration_price": "{plan} ({price})",
    "msg.migration_price_regular": "{plan} ({price} instead of {regular})",
    "msg.or": " or ",
    "page.step_whatsapp": "Send us a WhatsApp message from the number that should get access: the button opens WhatsApp with a one-time code typed in, just press send. We answer with your payment link; after paying, the group's invite arrives in WhatsApp.",
    "page.connect_whatsapp": "Continue with WhatsApp",
    "page.connected_whatsapp": "Your WhatsApp number {phone} is linked: your invite goes to it.",
    "page.next_whatsapp": "{place}: the group's invite link arrives in WhatsApp within seconds.",
    "err.whatsapp.title": "WhatsApp is not set up",
    "err.whatsapp.off": "This community does not take WhatsApp sign-ups yet; ask the creator.",
    "err.whatsapp.pay_link": "This payment link was already used or has expired: send the join code again from WhatsApp, or open the join page again.",
    'msg.renewal_notice': "Heads-up: your {plan} subscription to {community} renews on {date}. Nothing to do to stay; to change your card or cancel before then, it takes a minute here: {manage_url}",
    'msg.renewal_legal_notice': "Your annual {plan} subscription to {community} renews automatically on {date} for another year. If you don't want it to, cancel before that date: a few clicks here: {manage_url} (consumer law asks us to remind you before a tacit renewal).",
    'msg.trial_ending': "Your free trial of {plan} in {community} ends on {date}: your card is charged then and you keep your access. Not for you? Cancel before that date and you pay nothing: {manage_url}",
    'msg.cancellation_receipt': "Your cancellation of {plan} is confirmed: you won't be charged again, and you keep your access to {community} until {date}. Changed your mind? Take it back before then and everything stays as it is: {manage_url}",
    'msg.email_subject': "{community}: about your membership",
    'msg.survey_question': "One question, if you have a minute: why are you leaving? {survey_url}",
    'msg.uncancelled': "Good news: your {plan} subscription continues. Nothing changes: same access to {community}, same price, next renewal on {date}.",
    # The default welcome: what the guide asks of a first day (clear rules, what is included, a
    # first step into the conversation) and where the membership is managed.
    'msg.welcome': "Welcome to {community}{name_part}! Your access is ready.{included}\nThree things to start well:\n1. Read the rules (the pinned message or the rules channel): they keep this place good for everyone.\n2. Introduce yourself in a few words: who you are and what you came for.\n3. Ask your first question: nobody expects you to know everything yet.\nYour membership (card, invoices, cancellation) is here any time: {manage_url}",
    'msg.welcome_included': "\nWhat {plan} includes: {description}",
    'msg.welcome_someone': "there",
    'msg.card_expiring': "Heads-up: the card on file for your {plan} subscription to {community} expires before your next payment on {date}. Add a new card so your access carries on without a hitch, it takes a minute: {manage_url}",
    'page.survey.title': "Why are you leaving?",
    'page.survey.intro': "One question about {plan}, and it helps a lot. Your answer goes to the creator only.",
    'page.survey.too_expensive': "Too expensive for me",
    'page.survey.not_using': "I don't use it enough",
    'page.survey.content': "The content isn't what I expected",
    'page.survey.temporary': "Just a break: I'll be back",
    'page.survey.other': "Something else",
    'page.survey.comment': "Anything to add? (optional)",
    'page.survey.send': "Send",
    'page.survey.thanks': "Thank you! The creator will read it. Your access stays open until the date in your receipt.",
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
    'reason.grant_expired': "l'accès qui t'avait été offert est arrivé à son terme",
    'reason.revoked': "le créateur a mis fin à l'accès qu'il t'avait donné",
    'reason.customer_deleted': 'ton compte de facturation a été fermé',
    'reason.price_not_sold': 'ton abonnement est passé à un prix que cette formule ne vend pas',
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
    "page.connected_telegram": "Compte Telegram relié : {user}. Ton invitation lui sera envoyée.",
    "page.your_telegram": "ton compte Telegram",
    "page.step_later": "{place} ({platform}) : le créateur t'ajoute après le paiement ; tu recevras un message.",
    "page.next_title": "Et maintenant ?",
    "page.next_discord": "{place} : ton compte Discord {user} reçoit son rôle dans quelques secondes ; ouvre Discord pour voir les nouveaux salons.",
    "page.next_invite": "{place} : ton invitation personnelle arrive (elle ne marche que pour toi).",
    "page.next_invite_ready": "{place} : <a href='{url}'>ouvre ton invitation personnelle</a> (elle ne marche que pour toi).",
    "page.next_other": "{place} : le créateur t'ajoute et tu recevras un message.",
    "page.fallback": "Rien après quelques minutes ? Recharge cette page pour voir où en est chaque accès, ou <a href='{manage}'>gère ton abonnement</a>.",
    "page.manage_title": "Ton abonnement",
    "page.relink": "Utiliser un autre compte Discord",
    "page.connected_as": "Compte Discord connecté : {user}",
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
    "tg.bound": "Ton compte Telegram est relié. Appuie sur le bouton pour payer ; juste après, je t'envoie ici ton "
    "invitation personnelle au groupe. Le bouton marche une fois, pendant 30 minutes.",
    "tg.pay_button": "Continuer vers le paiement",
    "tg.linked_resync": "Ton compte Telegram est relié à ton abonnement et je vérifie ton accès. Pour payer ou gérer "
    "ton abonnement, rouvre la page d'inscription.",
    "tg.expired": "Ce lien a expiré ou a déjà servi. Rouvre la page d'inscription et appuie sur « Continuer avec "
    "Telegram » pour en avoir un nouveau.",
    "tg.conflict": "Ce compte Telegram a déjà son propre abonnement ici. Rouvre la page d'inscription depuis le "
    "navigateur que tu as utilisé pour lui, ou demande au créateur de déplacer ton abonnement.",
    "tg.relinked": "C'est fait : ton abonnement utilise maintenant ce compte Telegram, et l'ancien a perdu son accès. "
    "Ton invitation personnelle au groupe arrive ici dans un instant.",
    "tg.relink_same": "Ce compte Telegram porte déjà ton abonnement : rien ne change.",
    "tg.relink_taken": "Ce compte Telegram a déjà son propre abonnement ici, donc je ne peux pas y déplacer le tien. "
    "Choisis un autre compte, ou demande au créateur de déplacer ton abonnement.",
    "tg.manage_button": "Ouvrir mon abonnement",
    "page.relink_telegram": "Utiliser un autre compte Telegram",
    "page.relinked": "C'est fait : ton abonnement utilise maintenant {user}. L'ancien compte a perdu son accès.",
    "page.relink_same": "C'est déjà le compte de ton abonnement : rien n'a changé.",
    "page.relinked_partial": "Ton abonnement utilise maintenant {user}. L'ancien compte n'a pas pu être retiré partout : s'il a encore accès, demande au créateur de le retirer.",
    "err.relink.title": "On n'a pas pu changer ton compte",
    "checkout.waiver": "En payant, tu demandes l'accès immédiat à {place} et tu reconnais renoncer ainsi à ton "
    "droit de rétractation de 14 jours.",
    "checkout.terms": "Conditions : {url}",
    "checkout.privacy": "Confidentialité : {url}",
    "page.waiver": "Ton accès commence dès le paiement : en payant, tu le demandes et tu renonces à ton droit de rétractation de 14 jours.",
    "page.accept_terms": "En payant, tu acceptes les <a href='{url}'>conditions générales</a>.",
    "page.privacy_link": "<a href='{url}'>Politique de confidentialité</a>",
    "page.from": "au choix, à partir de {amount}",
    "page.terms_link": "<a href='{url}'>Conditions générales</a>",
    "msg.whatsapp.join": "Rejoindre {plan} - {code}",
    "msg.whatsapp.bound": "Ton numéro WhatsApp est relié. Paie ici pour rejoindre {plan} (ce lien marche une fois, pendant 30 minutes) : {url}",
    "msg.whatsapp.no_code": "Ce message ne contient aucun code d'inscription valide (un code marche une fois, pendant 30 minutes). Rouvre la page d'inscription et utilise son bouton WhatsApp pour en avoir un nouveau.",
    "msg.whatsapp.taken": "Ce numéro WhatsApp appartient déjà à un autre abonnement ici ; écris depuis le numéro avec lequel tu t'es inscrit, ou demande de l'aide au créateur.",
    "msg.invite_group": "Bienvenue dans {community} ! Voici le lien d'invitation du groupe : {invite_url} Il est pour toi : merci de ne pas le partager.",
    "msg.migration_offer": "{community} devient une communauté payante, et comme tu fais partie des premiers membres, tu as droit au tarif fondateur : {plan}. Ton accès reste ouvert jusqu'au {date} ; pour rester ensuite, profite de l'offre ici (ce lien est à toi : ton compte est déjà relié) : {offer_url}{note}",
    "msg.migration_post": "{community} devient une communauté payante. Chaque membre d'ici a droit au tarif fondateur, {plan}, jusqu'au {date} ; après cette date, seuls les membres accèdent à cet espace. Profite de l'offre ici : {join_url}{note}",
    "msg.migration_price": "{plan} ({price})",
    "msg.migration_price_regular": "{plan} ({price} au lieu de {regular})",
    "msg.or": " ou ",
    "page.step_whatsapp": "Envoie-nous un message WhatsApp depuis le numéro qui doit recevoir l'accès : le bouton ouvre WhatsApp avec un code à usage unique déjà tapé, tu n'as qu'à l'envoyer. On te répond avec ton lien de paiement ; après le paiement, l'invitation au groupe arrive sur WhatsApp.",
    "page.connect_whatsapp": "Continuer avec WhatsApp",
    "page.connected_whatsapp": "Ton numéro WhatsApp {phone} est relié : ton invitation lui sera envoyée.",
    "page.next_whatsapp": "{place} : le lien d'invitation au groupe arrive sur WhatsApp dans quelques secondes.",
    "err.whatsapp.title": "WhatsApp n'est pas configuré",
    "err.whatsapp.off": "Cette communauté ne prend pas encore d'inscriptions par WhatsApp ; demande au créateur.",
    "err.whatsapp.pay_link": "Ce lien de paiement a déjà servi ou a expiré : renvoie le code d'inscription depuis WhatsApp, ou rouvre la page d'inscription.",
    'msg.renewal_notice': "Petit rappel : ton abonnement {plan} à {community} se renouvelle le {date}. Rien à faire pour rester ; pour changer de carte ou résilier avant, ça prend une minute ici : {manage_url}",
    'msg.renewal_legal_notice': "Ton abonnement annuel {plan} à {community} sera reconduit automatiquement le {date} pour un an. Si tu ne veux pas qu'il soit reconduit, tu peux le résilier avant cette date en quelques clics ici : {manage_url} (information prévue par l'article L215-1 du Code de la consommation).",
    'msg.trial_ending': "Ton essai gratuit de {plan} dans {community} se termine le {date} : ta carte sera alors débitée et tu gardes ton accès. Pas pour toi ? Résilie avant cette date et tu ne paies rien : {manage_url}",
    'msg.cancellation_receipt': "Ta résiliation de {plan} est bien prise en compte : tu ne seras plus prélevé, et tu gardes ton accès à {community} jusqu'au {date}. Tu changes d'avis ? Annule la résiliation avant cette date et tout reste comme avant : {manage_url}",
    'msg.email_subject': "{community} : à propos de ton abonnement",
    'msg.survey_question': "Une seule question, si tu as une minute : pourquoi tu pars ? {survey_url}",
    'msg.uncancelled': "Bonne nouvelle : ton abonnement {plan} continue. Rien ne change : même accès à {community}, même prix, prochain renouvellement le {date}.",
    'msg.welcome': "Bienvenue dans {community}{name_part} ! Ton accès est prêt.{included}\nTrois choses pour bien démarrer :\n1. Lis les règles (le message épinglé ou le salon des règles) : elles gardent cet endroit agréable pour tout le monde.\n2. Présente-toi en quelques mots : qui tu es et ce que tu viens chercher.\n3. Pose ta première question : personne n'attend que tu saches déjà tout.\nTon abonnement (carte, factures, résiliation) se gère ici quand tu veux : {manage_url}",
    'msg.welcome_included': "\nCe que comprend {plan} : {description}",
    'msg.welcome_someone': "toi",
    'msg.card_expiring': "Petit rappel : la carte enregistrée pour ton abonnement {plan} à {community} expire avant ton prochain paiement, le {date}. Ajoute une nouvelle carte pour que ton accès continue sans accroc, ça prend une minute : {manage_url}",
    'page.survey.title': "Pourquoi tu pars ?",
    'page.survey.intro': "Une seule question sur {plan}, et ça aide beaucoup. Ta réponse va au créateur uniquement.",
    'page.survey.too_expensive': "Trop cher pour moi",
    'page.survey.not_using': "Je ne m'en sers pas assez",
    'page.survey.content': "Le contenu n'est pas ce que j'attendais",
    'page.survey.temporary': "Juste une pause : je reviendrai",
    'page.survey.other': "Autre chose",
    'page.survey.comment': "Quelque chose à ajouter ? (facultatif)",
    'page.survey.send': "Envoyer",
    'page.survey.thanks': "Merci ! Le créateur la lira. Ton accès reste ouvert jusqu'à la date indiquée dans ton reçu.",
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


# The creator's dashboard (http/dashboard.py): keys dash.*, French speaks to the creator as "tu".
EN.update({
    "dash.title": "Membergate dashboard",
    "dash.login": "Log in",
    "dash.token": "Admin token",
    "dash.login_help": "Paste the admin token (the ADMIN_TOKEN secret of your deployment).",
    "dash.logout": "Log out",
    "dash.bad_token": "That is not the admin token: paste the value of the ADMIN_TOKEN secret.",
    "dash.throttled": "Too many login attempts: wait a minute, then try again.",
    "dash.expired": "Your session ended or the form is stale: log in again.",
    "dash.bad_form": "This form was not sent by the dashboard (missing or wrong security token): reload the page and try again.",
    "dash.back": "Back to the dashboard",
    "dash.bad_id": "This form names no valid member or plan: go back to the dashboard and use its buttons.",
    "dash.no_member": "No member {member}: pick one from the member list.",
    "dash.no_plan": "No plan {plan}: pick one from the plans list.",
    "dash.mrr": "MRR",
    "dash.arr": "ARR",
    "dash.mrr_net": "MRR, net of tax",
    "dash.net_of_tax": "Net of tax: with Stripe Tax, MRR, ARR, ARPU, LTV and churned revenue leave out the tax members pay, as each subscription's latest paid invoice shows it.",
    "dash.paying": "Paying members",
    "dash.trialing": "Trialing",
    "dash.grace": "In grace",
    "dash.paying_ok": "Paying, up to date",
    "dash.mrr_over_time": "MRR over time (end of each month) and its movements",
    "dash.month": "Month",
    "dash.new": "New",
    "dash.expansion": "Expansion",
    "dash.contraction": "Contraction",
    "dash.churned": "Churned",
    "dash.reactivation": "Reactivation",
    "dash.by_state": "Members by state (today)",
    "dash.churn": "Churn (since {start})",
    "dash.voluntary": "Voluntary (cancelled)",
    "dash.involuntary": "Involuntary (payment failed)",
    "dash.logo_rate": "Member churn rate",
    "dash.revenue_rate": "Revenue churn rate",
    "dash.funnel": "Conversion funnel (since {start})",
    "dash.views": "Join page views",
    "dash.bound": "Account connected",
    "dash.checkouts": "Checkout started",
    "dash.paid": "Paid",
    "dash.trial_to_paid": "Trials converted",
    "dash.cohorts": "Retention by month of joining (paying at the end of each month)",
    "dash.members": "Members",
    "dash.state": "State",
    "dash.plan": "Plan",
    "dash.community": "Community",
    "dash.platform": "Platform",
    "dash.all": "All",
    "dash.search": "Search",
    "dash.search_hint": "name, @handle, email or id",
    "dash.filter": "Filter",
    "dash.member": "Member",
    "dash.since": "Since",
    "dash.resync": "Resync access",
    "dash.resync_help": "After fixing what a failure named (bot permission, role order): brings the member's access in line with what they paid for.",
    "dash.export": "Export members (CSV)",
    "dash.export_payments": "Export payments (CSV)",
    "dash.timeline": "Timeline of {member}",
    "dash.plans": "Plans and join links",
    "dash.communities": "Communities",
    "dash.join_link": "Join link",
    "dash.join_links": "Join links",
    "dash.no_offer": "No plan on sale grants it: create one (POST /admin/plans).",
    "dash.problems": "Needs your attention",
    "dash.no_problems": "Nothing needs your attention.",
    "dash.problems_scanned": "Access checked for the first {n} members only: look the others up in the member list.",
    "dash.access_failed": "Access failed in {what}",
    "dash.access_failed_short": "access failed",
    "dash.event_failed": "Stripe event {what} failed",
    "dash.event_stuck": "Stripe event {what} not processed after an hour",
    "dash.fix_access": "Fix what the reason says, then open the member and press Resync access.",
    "dash.fix_event": "Check the billing processor's logs and the dead-letter queue; Stripe's redelivery hands the event over again (membergate events).",
    "dash.resynced": "Resync queued for {member}: communities to check: {count}.",
    "dash.no_members": "No member matches.",
    "dash.first_page": "First page",
    "dash.next_page": "Next page",
    "dash.demo": "Demo data: this deployment was seeded by infra/local/seed.py; none of these members is real.",
    "dash.place": "Place",
    "dash.name": "Name",
    "dash.prices": "Stripe prices",
    "dash.none_yet": "Nothing yet.",
    "dash.ltv": "LTV",
    "dash.arpu": "ARPU",
    "dash.when": "When",
    "dash.what": "What",
    "dash.detail": "Detail",
    "dash.lang": "Français",
    "dash.state_active": "active",
    "dash.state_grace": "in grace",
    "dash.state_pending": "pending",
    "dash.state_ended": "ended",
    "dash.state_none": "none",
    "dash.on_sale": "on sale",
    "dash.archived": "archived on {date}",
    "dash.archive": "Archive…",
    "dash.archive_help": "Archiving {plan} closes the offer: its join link then says so and no new checkout starts. Members who have it keep their access until it ends. This cannot be undone here.",
    "dash.archive_do": "Archive this plan",
    "dash.archived_notice": "{plan} is archived: its join link now says the offer is closed.",
    "dash.kind_subscription": "subscription",
    "dash.kind_pass": "pass",
    "dash.kind_lifetime": "lifetime",
})
FR.update({
    "dash.title": "Tableau de bord Membergate",
    "dash.login": "Se connecter",
    "dash.token": "Jeton d'administration",
    "dash.login_help": "Colle le jeton d'administration (le secret ADMIN_TOKEN de ton déploiement).",
    "dash.logout": "Se déconnecter",
    "dash.bad_token": "Ce n'est pas le jeton d'administration : colle la valeur du secret ADMIN_TOKEN.",
    "dash.throttled": "Trop de tentatives de connexion : attends une minute, puis réessaie.",
    "dash.expired": "Ta session a pris fin ou le formulaire est périmé : reconnecte-toi.",
    "dash.bad_form": "Ce formulaire ne vient pas du tableau de bord (jeton de sécurité absent ou faux) : recharge la page et réessaie.",
    "dash.back": "Retour au tableau de bord",
    "dash.bad_id": "Ce formulaire ne désigne aucun membre ni aucune offre valide : retourne au tableau de bord et utilise ses boutons.",
    "dash.no_member": "Aucun membre {member} : choisis-en un dans la liste des membres.",
    "dash.no_plan": "Aucune offre {plan} : choisis-en une dans la liste des offres.",
    "dash.mrr": "MRR",
    "dash.arr": "ARR",
    "dash.mrr_net": "MRR, hors taxes",
    "dash.net_of_tax": "Hors taxes : avec Stripe Tax, le MRR, l'ARR, l'ARPU, la LTV et le revenu perdu ne comptent pas la taxe payée par les membres, telle que la dernière facture payée de chaque abonnement l'indique.",
    "dash.paying": "Membres payants",
    "dash.trialing": "En essai",
    "dash.grace": "En période de grâce",
    "dash.paying_ok": "Payants, à jour",
    "dash.mrr_over_time": "MRR dans le temps (fin de chaque mois) et ses mouvements",
    "dash.month": "Mois",
    "dash.new": "Nouveau",
    "dash.expansion": "Expansion",
    "dash.contraction": "Contraction",
    "dash.churned": "Perdu",
    "dash.reactivation": "Réactivation",
    "dash.by_state": "Membres par état (aujourd'hui)",
    "dash.churn": "Attrition (depuis le {start})",
    "dash.voluntary": "Volontaire (résiliation)",
    "dash.involuntary": "Involontaire (paiement échoué)",
    "dash.logo_rate": "Taux d'attrition des membres",
    "dash.revenue_rate": "Taux d'attrition du revenu",
    "dash.funnel": "Entonnoir de conversion (depuis le {start})",
    "dash.views": "Vues de la page d'adhésion",
    "dash.bound": "Compte connecté",
    "dash.checkouts": "Paiement commencé",
    "dash.paid": "Payé",
    "dash.trial_to_paid": "Essais convertis",
    "dash.cohorts": "Rétention par mois d'arrivée (payants à la fin de chaque mois)",
    "dash.members": "Membres",
    "dash.state": "État",
    "dash.plan": "Offre",
    "dash.community": "Communauté",
    "dash.platform": "Plateforme",
    "dash.all": "Tous",
    "dash.search": "Rechercher",
    "dash.search_hint": "nom, @pseudo, e-mail ou identifiant",
    "dash.filter": "Filtrer",
    "dash.member": "Membre",
    "dash.since": "Depuis",
    "dash.resync": "Resynchroniser l'accès",
    "dash.resync_help": "Après avoir corrigé ce qu'un échec indiquait (permission du bot, ordre des rôles) : remet l'accès du membre en accord avec ce qu'il a payé.",
    "dash.export": "Exporter les membres (CSV)",
    "dash.export_payments": "Exporter les paiements (CSV)",
    "dash.timeline": "Historique de {member}",
    "dash.plans": "Offres et liens d'adhésion",
    "dash.communities": "Communautés",
    "dash.join_link": "Lien d'adhésion",
    "dash.join_links": "Liens d'adhésion",
    "dash.no_offer": "Aucune offre en vente n'y donne accès : crées-en une (POST /admin/plans).",
    "dash.problems": "À traiter",
    "dash.no_problems": "Rien à traiter.",
    "dash.problems_scanned": "Accès vérifiés pour les {n} premiers membres seulement : cherche les autres dans la liste des membres.",
    "dash.access_failed": "Accès échoué dans {what}",
    "dash.access_failed_short": "accès échoué",
    "dash.event_failed": "Événement Stripe {what} en échec",
    "dash.event_stuck": "Événement Stripe {what} non traité depuis plus d'une heure",
    "dash.fix_access": "Corrige ce que la raison indique, puis ouvre le membre et appuie sur Resynchroniser l'accès.",
    "dash.fix_event": "Regarde les journaux du traitement de facturation et la file des messages en échec ; un nouvel envoi de Stripe le retraite (membergate events).",
    "dash.resynced": "Resynchronisation lancée pour {member} : communautés à vérifier : {count}.",
    "dash.no_members": "Aucun membre ne correspond.",
    "dash.first_page": "Première page",
    "dash.next_page": "Page suivante",
    "dash.demo": "Données de démonstration : ce déploiement a été rempli par infra/local/seed.py ; aucun de ces membres n'est réel.",
    "dash.place": "Lieu",
    "dash.name": "Nom",
    "dash.prices": "Prix Stripe",
    "dash.none_yet": "Rien pour l'instant.",
    "dash.ltv": "LTV",
    "dash.arpu": "ARPU",
    "dash.when": "Quand",
    "dash.what": "Quoi",
    "dash.detail": "Détail",
    "dash.lang": "English",
    "dash.state_active": "actif",
    "dash.state_grace": "en grâce",
    "dash.state_pending": "en attente",
    "dash.state_ended": "terminé",
    "dash.state_none": "aucun",
    "dash.on_sale": "en vente",
    "dash.archived": "archivée le {date}",
    "dash.archive": "Archiver…",
    "dash.archive_help": "Archiver {plan} ferme l'offre : son lien d'adhésion l'indique et aucun nouveau paiement ne démarre. Celles et ceux qui l'ont gardent leur accès jusqu'à son terme. Pas d'annulation possible ici.",
    "dash.archive_do": "Archiver cette offre",
    "dash.archived_notice": "{plan} est archivée : son lien d'adhésion indique maintenant que l'offre est fermée.",
    "dash.kind_subscription": "abonnement",
    "dash.kind_pass": "pass",
    "dash.kind_lifetime": "à vie",
})

# The dashboard's data-rights actions on a member's page (export, erase).
EN.update({
    "dash.privacy": "Data rights",
    "dash.export_member": "Export data (JSON)",
    "dash.export_member_help": "Everything Membergate holds on this member, for a data-access or portability request.",
    "dash.erase": "Erase member…",
    "dash.erase_help": "Erasing removes the member's access first, then deletes their accounts, tokens, messages and survey answers for good. Payments stay in Stripe and, pseudonymised, in the numbers. Cancel a live subscription in Stripe first.",
    "dash.erase_confirm": "Type the member id ({member}) to confirm",
    "dash.erase_reason": "Why (kept with the erasure, e.g. request by email)",
    "dash.erase_do": "Erase this member",
    "dash.erase_mismatch": "The id you typed is not {member}: nothing was erased. Type it exactly to confirm.",
    "dash.erase_no_reason": "Say why the member is erased (e.g. request by email): nothing was erased.",
    "dash.erasing": "Erasure of {member} asked: their access is being removed in {communities}. Press Erase again in a minute to finish.",
    "dash.erased": "{member} was erased on {date}: only pseudonymous records remain.",
    "dash.live_subscription": "{message}",
})
FR.update({
    "dash.privacy": "Droits sur les données",
    "dash.export_member": "Exporter les données (JSON)",
    "dash.export_member_help": "Tout ce que Membergate détient sur ce membre, pour une demande d'accès ou de portabilité.",
    "dash.erase": "Effacer le membre…",
    "dash.erase_help": "L'effacement retire d'abord l'accès du membre, puis supprime définitivement ses comptes, jetons, messages et réponses au questionnaire. Les paiements restent chez Stripe et, pseudonymisés, dans les chiffres. Résilie d'abord un abonnement en cours dans Stripe.",
    "dash.erase_confirm": "Tape l'identifiant du membre ({member}) pour confirmer",
    "dash.erase_reason": "Pourquoi (gardé avec l'effacement, p. ex. demande par e-mail)",
    "dash.erase_do": "Effacer ce membre",
    "dash.erase_mismatch": "L'identifiant tapé n'est pas {member} : rien n'a été effacé. Tape-le exactement pour confirmer.",
    "dash.erase_no_reason": "Indique pourquoi le membre est effacé (p. ex. demande par e-mail) : rien n'a été effacé.",
    "dash.erasing": "Effacement de {member} demandé : son accès est en cours de retrait dans {communities}. Appuie de nouveau sur Effacer dans une minute pour terminer.",
    "dash.erased": "{member} a été effacé le {date} : il ne reste que des enregistrements pseudonymes.",
    "dash.live_subscription": "{message}",
})
# Creator controls (ctl4): a removal undone, seats, one trial per identity.
EN.update({
    "msg.access_restored": "Good news: you have your access to {community} back ({plan}){until}; the creator restored it. Welcome back! If anything is missing, open your page: {manage_url}",
    "msg.until_date": "until {date}",
    "msg.until_no_end": "with no end date",
})
FR.update({
    "msg.access_restored": "Bonne nouvelle : tu as retrouvé ton accès à {community} ({plan}){until}, le créateur te l'a rendu. Content de te revoir ! S'il manque quelque chose, ouvre ta page : {manage_url}",
    "msg.until_date": "jusqu'au {date}",
    "msg.until_no_end": "sans date de fin",
})
# Access back after a removal the member was told about (msg10): what changed, once per removal.
EN.update({
    "msg.access_back": "Good news: you have your access to {community} back. {change} Welcome back! Your page, to see or manage your membership: {manage_url}",
    "msg.back.dispute_closed": "The dispute on your payment is closed and the payment stands, so {plan} is active again.",
    "msg.back.paid_again": "A payment for {plan} went through, so it is active again.",
    "msg.back.resumed": "Your subscription to {plan} is running again.",
    "msg.back.subscribed_again": "You subscribed to {plan} again.",
    "msg.back.bought_again": "You bought {plan} again.",
    "msg.back.other": "{plan} gives you access now.",
    "msg.back.again": "{plan} is active again.",
})
FR.update({
    "msg.access_back": "Bonne nouvelle : tu as retrouvé ton accès à {community}. {change} Content de te revoir ! Ta page, pour voir ou gérer ton adhésion : {manage_url}",
    "msg.back.dispute_closed": "Le litige sur ton paiement est clos et le paiement est maintenu : {plan} est de nouveau actif.",
    "msg.back.paid_again": "Un paiement pour {plan} est passé : c'est de nouveau actif.",
    "msg.back.resumed": "Ton abonnement à {plan} a repris.",
    "msg.back.subscribed_again": "Tu as repris un abonnement à {plan}.",
    "msg.back.bought_again": "Tu as de nouveau acheté {plan}.",
    "msg.back.other": "C'est {plan} qui te donne l'accès maintenant.",
    "msg.back.again": "{plan} est de nouveau actif.",
})
EN.update({
    "page.seats_left": "{n} seats left at this price",
    "page.seat_left": "1 seat left at this price",
    "page.sold_out": "This offer is sold out: every seat has been taken. Ask the creator whether places will open again.",
    "err.sold_out.title": "Sold out",
    "err.sold_out": "This offer is sold out: the last seat was just taken. Ask the creator whether places will open again, or look at their other offers.",
})
FR.update({
    "page.seats_left": "{n} places restantes à ce prix",
    "page.seat_left": "1 place restante à ce prix",
    "page.sold_out": "Cette offre est complète : toutes les places sont prises. Demande au créateur si des places vont se libérer.",
    "err.sold_out.title": "Complet",
    "err.sold_out": "Cette offre est complète : la dernière place vient d'être prise. Demande au créateur si des places vont se libérer, ou regarde ses autres offres.",
})
EN.update({
    "page.trial_used": "Your free trial was already used: this checkout starts the paid subscription straight away.",
})
FR.update({
    "page.trial_used": "Ton essai gratuit a déjà été utilisé : ce paiement démarre directement l'abonnement payant.",
})
# The manage page's other tiers (tiers9): a switch of the same subscription, prorated.
EN.update({
    "page.other_tiers": "Change plan",
    "page.other_tiers_note": "Switching keeps your one subscription: Stripe prorates the difference on your next invoice, "
                             "you are never charged twice.",
})
FR.update({
    "page.other_tiers": "Changer de formule",
    "page.other_tiers_note": "Changer de formule garde ton abonnement unique : Stripe calcule le prorata sur ta prochaine "
                             "facture, tu ne paies jamais deux fois.",
})
# The manage page's tiers in the member's currency (recon10): Stripe cannot change a subscription's currency.
EN.update({
    "page.tier_no_currency": "{plan} is not sold in {currency}, the currency you pay in, and a subscription's "
                             "currency cannot change: ask the creator to add a {currency} price to {plan}, or "
                             "subscribe to {plan} once your current subscription has ended.",
    "err.switch_currency.title": "This price can't replace your subscription",
    "err.switch_currency": "You pay in {currency}, and a subscription's currency cannot change. Go back to your "
                           "page and pick a {currency} price of {plan}: that switch keeps your one subscription.",
    "err.switch_no_currency": "{plan} is not sold in {currency}, the currency you pay in, and a subscription's "
                              "currency cannot change. Ask the creator to add a {currency} price to {plan}, or "
                              "subscribe to {plan} once your current subscription has ended. Nothing was changed.",
})
FR.update({
    "page.tier_no_currency": "{plan} n'est pas vendu en {currency}, la devise dans laquelle tu paies, et la devise "
                             "d'un abonnement ne peut pas changer : demande au créateur d'ajouter un prix en "
                             "{currency} à {plan}, ou abonne-toi à {plan} une fois ton abonnement actuel terminé.",
    "err.switch_currency.title": "Ce prix ne peut pas remplacer ton abonnement",
    "err.switch_currency": "Tu paies en {currency}, et la devise d'un abonnement ne peut pas changer. Reviens sur "
                           "ta page et choisis un prix de {plan} en {currency} : tu gardes ainsi ton abonnement unique.",
    "err.switch_no_currency": "{plan} n'est pas vendu en {currency}, la devise dans laquelle tu paies, et la devise "
                              "d'un abonnement ne peut pas changer. Demande au créateur d'ajouter un prix en "
                              "{currency} à {plan}, ou abonne-toi à {plan} une fois ton abonnement actuel terminé. "
                              "Rien n'a été modifié.",
})
# A switch refused on the member's page (recon10): already on that plan, or a payment still settling.
EN.update({
    "err.already_held.title": "You already have this plan",
    "err.already_held": "You already have {plan}: nothing was changed. To change your card, see your invoices or "
                        "cancel, use \"Manage billing\" on your page.",
    "err.payment_settling.title": "Your payment is still being confirmed",
    "err.payment_settling": "Your last payment for this community is still being confirmed by your bank: nothing "
                            "was changed. Come back to your page to change your plan once it is confirmed.",
})
FR.update({
    "err.already_held.title": "Tu as déjà cette formule",
    "err.already_held": "Tu as déjà {plan} : rien n'a été modifié. Pour changer de carte, voir tes factures ou "
                        "résilier, utilise « Gérer ma facturation » sur ta page.",
    "err.payment_settling.title": "Ton paiement est encore en cours de confirmation",
    "err.payment_settling": "Ton dernier paiement pour cette communauté est encore en cours de confirmation par ta "
                            "banque : rien n'a été modifié. Reviens sur ta page pour changer de formule une fois "
                            "qu'il est confirmé.",
})
# The manage page's pending downgrade (down10): a switch the plan left makes wait for the period end.
EN.update({
    "page.pending_switch": "Your plan moves to {plan} on {date}. Until then you keep {current}, which you paid for.",
    "page.keep_tier": "Keep {current}",
})
FR.update({
    "page.pending_switch": "Ta formule passe à {plan} le {date}. D'ici là, tu gardes {current}, que tu as déjà payée.",
    "page.keep_tier": "Garder {current}",
})
# The join page's waiver box: the member's express consent when Checkout shows no terms box (no TermsUrl).
EN.update({
    "page.waiver_box": "I ask for immediate access and I give up my 14-day right of withdrawal once access has started.",
    "err.waiver.title": "One box to tick first",
    "err.waiver": "Your access starts as soon as you pay, so we need your agreement first: go back, tick the box "
    "above the pay button, then press it again.",
})
FR.update({
    "page.waiver_box": "Je demande l'accès immédiat et je renonce à mon droit de rétractation de 14 jours dès que l'accès a commencé.",
    "err.waiver.title": "Une case à cocher d'abord",
    "err.waiver": "Ton accès commence dès le paiement, on a donc besoin de ton accord avant : reviens en arrière, coche "
    "la case au-dessus du bouton de paiement, puis appuie dessus à nouveau.",
})
