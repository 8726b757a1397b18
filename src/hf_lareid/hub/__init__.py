"""What goes to the Hugging Face Hub beside a model: the shipped setups (`hub.setups`), the model card
(`hub.modelcard`, rendered from `model_card_template.md`) and publishing a trained model folder (`hub.push`)."""
