"""Data contracts: ODCS v3 YAML with our privacy policy in ``customProperties``."""

from .load import CONTRACT_FILE, contract_file
from .model import Budget, Column, Contract, Purpose, Table
from .odcs import (ColumnDoc, ContractDoc, ServerDoc, TableDoc, check_contract,
                   check_contract_text, contract_text, load_contract, load_contract_text)

__all__ = ["CONTRACT_FILE", "Budget", "Column", "ColumnDoc", "Contract", "ContractDoc",
           "Purpose", "ServerDoc", "Table", "TableDoc", "check_contract", "check_contract_text",
           "contract_file", "contract_text", "load_contract", "load_contract_text"]
