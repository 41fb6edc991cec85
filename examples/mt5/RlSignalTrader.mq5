//+------------------------------------------------------------------+
//| RlSignalTrader.mq5: example Expert Advisor for `trader.serve`     |
//|                                                                  |
//| NOT RUN HERE. MetaTrader 5 is a Windows terminal with a broker    |
//| connection; neither exists where this project is built and        |
//| tested, so this file has never been compiled or run by us. What   |
//| is tested is the service side: examples/mt5/send_like_ea.py sends |
//| byte for byte the request bodies this EA builds and checks the    |
//| answers (tests/test_serve.py runs it against a live service).     |
//|                                                                  |
//| On each new closed bar of the chart it posts the bars closed      |
//| since the last post (on the first post: InpHistoryBars of         |
//| history) to POST /v1/bars, reads "position" from the answer       |
//| (-1 short, 0 flat, +1 long, or a fraction in continuous mode)     |
//| and trades the symbol to position * InpLots. A null position      |
//| (the service still needs more bars) or a failed request changes   |
//| nothing; the next tick tries again with the same bars.            |
//|                                                                  |
//| Set up: Tools > Options > Expert Advisors > "Allow WebRequest for |
//| listed URL" must list the service's address (e.g.                 |
//| http://127.0.0.1:8000). Netting accounts: the position is one net |
//| volume per symbol. Bar times are sent as the terminal's server    |
//| time in Unix seconds; train on data exported from the same        |
//| server so that the times agree.                                   |
//+------------------------------------------------------------------+
#property copyright "rl-signal-trader"
#property version   "1.00"
#property description "Posts each closed bar to trader.serve and holds the position it answers."

#include <Trade\Trade.mqh>

input string InpUrl         = "http://127.0.0.1:8000/v1/bars"; // service endpoint
input string InpToken       = "";        // bearer token (when the service has one)
input string InpSymbolName  = "";        // symbol name the run knows (empty: the chart's symbol)
input double InpLots        = 0.10;      // lots at position +-1
input int    InpHistoryBars = 1000;      // bars sent on the first post (>= the service's bars_needed)
input int    InpTimeoutMs   = 5000;      // WebRequest timeout
input ulong  InpMagic       = 20261203;  // magic number of this EA's orders

CTrade   g_trade;
datetime g_last_sent = 0;                // open time of the newest bar the service acknowledged

//+------------------------------------------------------------------+
int OnInit()
  {
   g_trade.SetExpertMagicNumber(InpMagic);
   return(INIT_SUCCEEDED);
  }

//+------------------------------------------------------------------+
//| One bar as the service reads it: {"time":...,"open":...,...}      |
//+------------------------------------------------------------------+
string BarJson(const MqlRates &r)
  {
   return(StringFormat("{\"time\":%I64d,\"open\":%s,\"high\":%s,\"low\":%s,\"close\":%s,\"volume\":%I64d}",
                       (long)r.time,
                       DoubleToString(r.open, _Digits), DoubleToString(r.high, _Digits),
                       DoubleToString(r.low, _Digits), DoubleToString(r.close, _Digits),
                       r.tick_volume));
  }

//+------------------------------------------------------------------+
//| The request body for rates[0..count-1] (oldest first)             |
//+------------------------------------------------------------------+
string BodyJson(const MqlRates &rates[], const int count)
  {
   string name = (InpSymbolName == "") ? _Symbol : InpSymbolName;
   string body = "{\"symbol\":\"" + name + "\",\"bars\":[";
   for(int i = 0; i < count; i++)
     {
      if(i > 0)
         body += ",";
      body += BarJson(rates[i]);
     }
   return(body + "]}");
  }

//+------------------------------------------------------------------+
//| POST the body; true with the answer text on HTTP 200              |
//+------------------------------------------------------------------+
bool Post(const string body, string &answer)
  {
   char data[], result[];
   string result_headers;
   int n = StringToCharArray(body, data, 0, StringLen(body), CP_UTF8); // no terminating 0 byte
   ArrayResize(data, n);
   string headers = "Content-Type: application/json\r\n";
   if(InpToken != "")
      headers += "Authorization: Bearer " + InpToken + "\r\n";
   ResetLastError();
   int status = WebRequest("POST", InpUrl, headers, InpTimeoutMs, data, result, result_headers);
   answer = CharArrayToString(result, 0, WHOLE_ARRAY, CP_UTF8);
   if(status != 200)
     {
      // -1: WebRequest itself failed (URL not allowed, no connection): GetLastError() says why.
      PrintFormat("trader.serve answered %d (error %d): %s", status, GetLastError(), answer);
      return(false);
     }
   return(true);
  }

//+------------------------------------------------------------------+
//| "position" of the answer; false when it is null or absent         |
//+------------------------------------------------------------------+
bool ParsePosition(const string answer, double &position)
  {
   int at = StringFind(answer, "\"position\":");
   if(at < 0)
      return(false);
   string rest = StringSubstr(answer, at + 11);
   StringTrimLeft(rest);
   if(StringSubstr(rest, 0, 4) == "null")
      return(false);
   position = StringToDouble(rest);   // reads the number up to the ',' that follows it
   return(true);
  }

//+------------------------------------------------------------------+
//| Net volume of the chart's symbol: + long, - short                 |
//+------------------------------------------------------------------+
double CurrentLots()
  {
   if(!PositionSelect(_Symbol))
      return(0.0);
   double volume = PositionGetDouble(POSITION_VOLUME);
   return(PositionGetInteger(POSITION_TYPE) == POSITION_TYPE_BUY ? volume : -volume);
  }

//+------------------------------------------------------------------+
//| Trade to position * InpLots, rounded to the symbol's volume step   |
//+------------------------------------------------------------------+
void ApplyPosition(const double position)
  {
   double step   = SymbolInfoDouble(_Symbol, SYMBOL_VOLUME_STEP);
   double target = MathRound(position * InpLots / step) * step;
   double current = CurrentLots();
   if(MathAbs(target - current) < step / 2.0)
      return;
   if(current != 0.0 && (target == 0.0 || (target > 0.0) != (current > 0.0)))
     {
      if(!g_trade.PositionClose(_Symbol))
         return;
      current = 0.0;
     }
   double diff = NormalizeDouble(target - current, 8);
   if(diff > 0.0)
      g_trade.Buy(diff, _Symbol);
   else if(diff < 0.0)
      g_trade.Sell(-diff, _Symbol);
  }

//+------------------------------------------------------------------+
//| On each tick: act once per newly closed bar                       |
//+------------------------------------------------------------------+
void OnTick()
  {
   datetime closed = iTime(_Symbol, _Period, 1);          // open time of the newest closed bar
   if(closed == 0 || closed <= g_last_sent)
      return;
   MqlRates rates[];
   ArraySetAsSeries(rates, false);                        // oldest first, as the service wants them
   int count;
   if(g_last_sent == 0)
      count = CopyRates(_Symbol, _Period, 1, InpHistoryBars, rates);   // start 1: skip the forming bar
   else
      count = CopyRates(_Symbol, _Period, g_last_sent + 1, closed, rates); // the bars closed since
   if(count <= 0)
      return;
   string answer;
   if(!Post(BodyJson(rates, count), answer))
      return;                                             // nothing acknowledged: resend next tick
   g_last_sent = closed;
   double position;
   if(ParsePosition(answer, position))
      ApplyPosition(position);
  }
//+------------------------------------------------------------------+
