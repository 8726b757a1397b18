"""What goes to the Hugging Face Hub beside a model: the shipped setups (`hub.setups`) and the model card
(`hub.modelcard`, rendered from `model_card_template.md`)."""
