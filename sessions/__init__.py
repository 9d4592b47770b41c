"""USSD dialogues: one state machine per open dialogue; menus are data from the profiles."""
