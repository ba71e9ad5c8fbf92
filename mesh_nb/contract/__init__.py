"""Data contracts: ODCS v3 YAML with our privacy policy in ``customProperties``."""

from .load import CONTRACT_FILE, check_contract, contract_file, load_contract
from .model import Budget, Column, Contract, Purpose, Table

__all__ = ["CONTRACT_FILE", "Budget", "Column", "Contract", "Purpose", "Table",
           "check_contract", "contract_file", "load_contract"]
