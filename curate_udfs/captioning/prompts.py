"""Caption prompts by variant (Cosmos-Curate's ``--captioning-prompt-variant``), and the enhancement prompt.

The variants are Cosmos-Curate's names; the wording is cliplake's own. ``--captioning-prompt-text``
replaces the variant's text entirely.
"""

DEFAULT_PROMPT = "Elaborate on the visual and narrative elements of the video in detail."

PROMPT_VARIANTS = {
    "default": DEFAULT_PROMPT,
    # footage from a camera on a moving car (dashcam, AV sensor rigs)
    "av": (
        "This video was recorded by a camera mounted on a car while it drives. Describe in detail how the "
        "recording car moves and how the other vehicles around it move. Note everything that matters for driving "
        "safety: where pedestrians and cyclists are relative to the vehicles, lane markings, road signs, traffic "
        "lights and their state, and any vehicle driving aggressively or unpredictably. Describe notable landmarks "
        "along the way as well."
    ),
    # footage from a fixed camera watching traffic
    "av-surveillance": (
        "This video was recorded by a fixed surveillance camera overlooking traffic. Describe in detail how the "
        "vehicles in view move, and everything that matters for road safety: where pedestrians and cyclists are "
        "relative to the vehicles, lane markings, road signs, traffic lights and their state, and any vehicle "
        "driving aggressively or unpredictably. Describe notable landmarks in the scene as well."
    ),
}
PROMPT_VARIANT_NAMES = tuple(PROMPT_VARIANTS)

# The system instruction of the caption-enhancement language model, by prompt variant (the user turn is the caption).
ENHANCE_PROMPTS = {
    "default": (
        "You rewrite video captions. Given a caption, return a richer version of it: keep every fact it states, "
        "add vivid but plausible detail about appearance, motion, lighting and atmosphere, and make it longer "
        "than the input. Answer with the rewritten caption only."
    ),
    "av": (
        "You rewrite captions of videos recorded from a driving car. Keep every fact, describe the traffic "
        "situation and the behaviour of each road user more precisely, and end with a one-sentence summary of "
        "the scene. The result must be longer than the input. Answer with the rewritten caption only."
    ),
}
ENHANCE_PROMPTS["av-surveillance"] = ENHANCE_PROMPTS["av"]


def caption_prompt(variant: str = "default", text: str | None = None) -> str:
    """The instruction given with each caption window: ``text`` when given, else the variant's.

    Example::

        caption_prompt("av")                      # the dashcam prompt
        caption_prompt("av", "Describe briefly.")  # "Describe briefly."

    Raises ValueError for an unknown variant, so a typo fails where the job starts.
    """
    if variant not in PROMPT_VARIANTS:
        raise ValueError(f"--captioning-prompt-variant must be one of {', '.join(PROMPT_VARIANT_NAMES)}, got {variant!r}")
    return text if text is not None else PROMPT_VARIANTS[variant]
